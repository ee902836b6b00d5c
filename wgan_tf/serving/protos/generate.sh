#!/bin/sh
# Regenerates the *_pb2.py beside this script from the .proto files. The protoc is grpcio-tools
# 1.74.0's (protoc 31.1): the same protobuf gencode version (6.31.1) as tensorflow-serving-api
# 2.21.0's own modules, so these load wherever those do. Run from anywhere:
#   python -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.74.0
#   PROTOC_PYTHON=/tmp/protoc/bin/python wgan_tf/serving/protos/generate.sh
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
"${PROTOC_PYTHON:-python}" -m grpc_tools.protoc -I . --python_out=. \
    wgan_tf/serving/protos/batching_parameters.proto wgan_tf/serving/protos/monitoring_config.proto
