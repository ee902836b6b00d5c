"""One closed-loop load client of benchmarks/serving_load.py, in a process of its own.

It imports grpc only (not TensorFlow: 64 TensorFlow imports on 2 cores take minutes): the
PredictRequests come pre-serialized from the benchmark, and the responses are not parsed. On its
own channel it sends the requests in turn, each as soon as the previous one is answered, from
``--start`` to ``--end`` (epoch seconds, shared by all clients), and writes one JSON list of
``[sent, answered, status code]`` per request. After a refusal (UNAVAILABLE, RESOURCE_EXHAUSTED)
it pauses ``--refusal-pause`` seconds, as a client backing off would, instead of spinning.
"""
import argparse
import json
import struct
import time

import grpc

PREDICT = "/tensorflow.serving.PredictionService/Predict"
REFUSALS = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


def read_requests(path):
    """Length-prefixed serialized requests (4-byte little-endian lengths)."""
    data, requests, i = open(path, "rb").read(), [], 0
    while i < len(data):
        (size,) = struct.unpack_from("<I", data, i)
        requests.append(data[i + 4:i + 4 + size])
        i += 4 + size
    return requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--requests", required=True)
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("--end", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--refusal-pause", type=float, default=0.05)
    args = parser.parse_args()
    requests = read_requests(args.requests)
    with grpc.insecure_channel(args.address, options=[
            ("grpc.max_receive_message_length", 256 << 20)]) as channel:
        predict = channel.unary_unary(PREDICT)  # bytes in, bytes out
        grpc.channel_ready_future(channel).result(timeout=120)
        while time.time() < args.start:
            time.sleep(min(0.05, max(0.0, args.start - time.time())))
        records, i = [], 0
        while (sent := time.time()) < args.end:
            try:
                predict(requests[i % len(requests)], timeout=120)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            records.append([sent, time.time(), code])
            if code in REFUSALS:
                time.sleep(args.refusal_pause)
            i += 1
    with open(args.out, "w") as f:
        json.dump(records, f)


if __name__ == "__main__":
    main()
