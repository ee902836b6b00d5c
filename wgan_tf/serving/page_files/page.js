// The page of wgan-tf serve (wgan_tf/serving/page.py). The models, their versions, signatures and
// classes come from the server's TF Serving REST API; every picture is one request to
// png/v1/models/NAME/versions/N:predict, a predict answered with one PNG grid. The state is kept
// in the URL's fragment, so a link shows the same pictures again.
"use strict";

const $ = (id) => document.getElementById(id);
const RETRIES = 5; // a 503 (server overloaded) is asked again after its Retry-After, this often
const MAX_SEED = Number.MAX_SAFE_INTEGER; // seeds are int64; JSON numbers are exact up to here
const ENLARGE_TO = 512; // small images are enlarged by whole factors to about this many pixels
let model = null; // {name, version, classes, signatures} of the model shown
let loads = 0; // the latest model load: a slower, older one must not overwrite it

class ServerError extends Error {
  constructor(status, message, retryAfter) {
    super(`${status}: ${message}`);
    this.retryAfter = retryAfter;
  }
}

// fetch, with the server's {"error": ...} (and Retry-After) thrown for any refusal.
async function request(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error(`no answer from the server (${e.message})`);
  }
  if (response.ok) return response;
  let message = response.statusText;
  try {
    message = (await response.json()).error || message;
  } catch (e) {
    // not JSON (a proxy's page): the status line says what there is to say
  }
  throw new ServerError(response.status, message, Number(response.headers.get("Retry-After")));
}

const getJSON = async (url) => (await request(url)).json();
const modelPath = (name) => `v1/models/${encodeURIComponent(name)}`;

function show(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

// A whole-number input's value, or an error naming the field.
function whole(id, min, max) {
  const input = $(id);
  const value = Number(input.value);
  if (input.value.trim() === "" || !Number.isSafeInteger(value) || value < min || value > max) {
    const name = input.closest("label").textContent.trim();
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got '${input.value}'`);
  }
  return value;
}

const range = (start, count) => Array.from({ length: count }, (_, i) => start + i);

// The class indices the picker asks for: [null] for a model without classes, every class for
// "all". A number that is not a class here (from a link) goes to the server, which says why not.
function chosenLabels() {
  if (!model.classes) return [null];
  const value = $("class").value;
  if (value === "all") return model.classes.map((_, i) => i);
  const index = model.classes.indexOf(value);
  if (index >= 0) return [index];
  if (/^-?\d+$/.test(value)) return [Number(value)];
  throw new Error(`unknown class '${value}': model '${model.name}' has classes ` +
    model.classes.join(", "));
}

// Inputs for every row: one row per label, each over the same values.
function rows(labels, inputs) {
  const out = {};
  for (const [key, values] of Object.entries(inputs)) out[key] = labels.flatMap(() => values);
  const count = Object.values(inputs)[0].length;
  if (labels[0] !== null) out.labels = labels.flatMap((label) => Array(count).fill(label));
  return out;
}

function classText(labels) {
  if (labels[0] === null) return "";
  return labels.length > 1 ? ", a row per class" : `, class ${$("class").value}`;
}

function writeFragment() {
  const state = {
    model: model.name, version: model.version, seed: $("seed").value, count: $("count").value,
    a: $("seed-a").value, b: $("seed-b").value, steps: $("steps").value,
  };
  if (model.classes) state.class = $("class").value;
  if ($("truncate").checked) state.psi = $("psi").value;
  history.replaceState(null, "", `#${new URLSearchParams(state)}`);
}

// Ask for one picture of `section` (its inputs from `build`) and show it, or the reason there is
// none. Only the latest request of a section is shown, whatever order the answers come in.
async function draw(section, build, retries = RETRIES) {
  const ticket = (section.ticket = (section.ticket || 0) + 1);
  const img = section.querySelector("img");
  const link = section.querySelector(".download");
  const caption = section.querySelector("figcaption");
  const error = section.querySelector(".error");
  section.setAttribute("aria-busy", "true");
  try {
    const ask = build();
    writeFragment();
    const query = ask.columns ? `?columns=${ask.columns}` : "";
    const response = await request(
      `png/${modelPath(model.name)}/versions/${model.version}:predict${query}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ signature_name: ask.signature, inputs: ask.inputs }),
      });
    const blob = await response.blob();
    if (ticket !== section.ticket) return;
    URL.revokeObjectURL(section.url);
    section.url = img.src = link.href = URL.createObjectURL(blob);
    await img.decode();
    if (ticket !== section.ticket) return;
    const factor = Math.max(1, Math.floor(ENLARGE_TO / img.naturalWidth));
    img.style.width = `${img.naturalWidth * factor}px`;
    link.download = ask.file;
    caption.textContent = ask.caption;
    img.hidden = link.hidden = false;
    show(error, "");
  } catch (e) {
    if (ticket !== section.ticket) return;
    img.hidden = link.hidden = true;
    caption.textContent = "";
    const retry = e.retryAfter > 0 && retries > 0;
    show(error, retry ? `${e.message} (asking again in ${e.retryAfter} s)` : e.message);
    if (retry) {
      setTimeout(() => ticket === section.ticket && draw(section, build, retries - 1),
        e.retryAfter * 1000);
    }
  } finally {
    if (ticket === section.ticket) {
      section.dataset.drawn = ticket; // which request's answer is shown: tests wait on it
      section.setAttribute("aria-busy", "false");
    }
  }
}

function drawGrid() {
  if (!model) return; // no model to show (its error is shown)
  draw($("samples"), () => {
    const seed = whole("seed", -MAX_SEED, MAX_SEED);
    const count = whole("count", 1, 1024);
    const last = seed + count - 1;
    if (last > MAX_SEED) throw new Error(`the last seed must be at most ${MAX_SEED}`);
    const labels = chosenLabels();
    const truncate = $("truncate").checked;
    const inputs = rows(labels, { seeds: range(seed, count) });
    if (truncate) inputs.truncation = inputs.seeds.map(() => Number($("psi").value));
    const psi = truncate ? `, truncation ψ = ${$("psi").value}` : "";
    return {
      signature: truncate ? "from_seeds_truncated" : "from_seeds",
      inputs,
      columns: labels.length > 1 ? count : null,
      caption: `Seeds ${seed} to ${last}${classText(labels)}${psi}.`,
      file: `${model.name}-${model.version}-seeds-${seed}-${last}.png`,
    };
  });
}

function drawStrip() {
  if (!model?.signatures.interpolate) return;
  draw($("walk"), () => {
    const a = whole("seed-a", -MAX_SEED, MAX_SEED);
    const b = whole("seed-b", -MAX_SEED, MAX_SEED);
    const steps = whole("steps", 2, 64);
    const labels = chosenLabels();
    // t as numpy's linspace makes it (wgan_tf.serving.Client), so both ask the same float32 t.
    const step = 1 / (steps - 1);
    const t = range(0, steps).map((i) => (i === steps - 1 ? 1 : i * step));
    return {
      signature: "interpolate",
      inputs: rows(labels, { seed_a: Array(steps).fill(a), seed_b: Array(steps).fill(b), t }),
      columns: steps,
      caption: `From seed ${a} to seed ${b} in ${steps} steps${classText(labels)}.`,
      file: `${model.name}-${model.version}-seed-${a}-to-${b}.png`,
    };
  });
}

// Something wrong with the model as a whole: say so, and show no picture of it.
function failModel(message) {
  model = null;
  show($("error"), message);
  $("samples").hidden = $("walk").hidden = true;
}

// TF Serving's version states, as a person reads them.
const STATES = { START: "starting", LOADING: "loading", UNLOADING: "unloading", END: "unloaded" };
const failed = (version) => version.status?.error_message;

// The chosen model's versions (TF Serving's status); the newest available one is shown. A model
// with no version available yet (loading) is asked again every 2 s.
async function loadModel(wantedVersion, wantedClass) {
  const load = ++loads;
  const name = $("model").value;
  let versions;
  try {
    versions = (await getJSON(modelPath(name))).model_version_status;
  } catch (e) {
    if (load === loads) failModel(`Model '${name}': ${e.message}`);
    return;
  }
  if (load !== loads) return;
  const select = $("version");
  select.replaceChildren(...versions.map((v) => {
    const option = new Option(v.state === "AVAILABLE" ? v.version
      : `${v.version} (${failed(v) ? "failed" : STATES[v.state] || v.state})`, v.version);
    option.disabled = v.state !== "AVAILABLE";
    return option;
  }));
  const available = versions.filter((v) => v.state === "AVAILABLE").map((v) => v.version);
  // Unloaded versions (END, no error) are history, not a problem.
  const problems = versions.filter((v) => failed(v) || !["AVAILABLE", "END"].includes(v.state))
    .map((v) => `version ${v.version} ${failed(v) ? `did not load: ${failed(v)}`
      : `is ${STATES[v.state] || v.state}`}`);
  if (!available.length) {
    failModel(`Model '${name}' has no version to serve yet (${problems.join("; ") ||
      "none found"}); asking again in 2 s.`);
    setTimeout(() => load === loads && loadModel(wantedVersion, wantedClass), 2000);
    return;
  }
  select.value = available.includes(wantedVersion) ? wantedVersion : available[0];
  const notice = problems.length ? `Model '${name}': ${problems.join("; ")}.` : "";
  await loadVersion(load, wantedClass, notice);
}

// The chosen version's signatures and classes (TF Serving's metadata), then its pictures.
async function loadVersion(load, wantedClass, notice = "") {
  const name = $("model").value;
  const version = $("version").value;
  let metadata;
  try {
    metadata = (await getJSON(`${modelPath(name)}/versions/${version}/metadata`)).metadata;
  } catch (e) {
    if (load === loads) failModel(`Model '${name}' version ${version}: ${e.message}`);
    return;
  }
  if (load !== loads) return;
  const signatures = metadata.signature_def.signature_def;
  const classes = metadata.class_names || null;
  model = { name, version, classes, signatures };
  show($("error"), notice);
  if (!signatures.from_seeds) {
    failModel(`Model '${name}' has no from_seeds signature: it makes no images from seeds.`);
    return;
  }
  const [, height, width, channels] = signatures.from_seeds.outputs.images.tensor_shape.dim
    .map((d) => Number(d.size));
  $("about").textContent = `${width}×${height} ${channels === 1 ? "grey" : "colour"} images · ` +
    `version ${version} · ${classes ? `classes: ${classes.join(", ")}` : "no classes"}`;
  const picker = $("class");
  if (classes) {
    const known = (c) => classes.includes(c) || c === "all";
    const keep = wantedClass || (known(picker.value) ? picker.value : classes[0]);
    picker.replaceChildren(...classes.map((c) => new Option(c)), new Option("all"));
    // A class from a link that this model does not have stays asked for: the answer says why.
    if (!known(keep)) picker.add(new Option(keep));
    picker.value = keep;
  }
  $("class-field").hidden = !classes;
  $("truncation-field").hidden = !signatures.from_seeds_truncated;
  if (!signatures.from_seeds_truncated) $("truncate").checked = false;
  $("samples").hidden = false;
  $("walk").hidden = !signatures.interpolate;
  drawGrid();
  drawStrip();
}

async function start() {
  const state = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  for (const [key, id] of [["seed", "seed"], ["count", "count"], ["a", "seed-a"], ["b", "seed-b"],
    ["steps", "steps"], ["psi", "psi"]]) {
    if (state[key] !== undefined) $(id).value = state[key];
  }
  $("truncate").checked = state.psi !== undefined;
  $("psi").disabled = !$("truncate").checked;
  $("psi-value").textContent = Number($("psi").value).toFixed(2);
  let names;
  try {
    names = (await getJSON("page/models")).models;
  } catch (e) {
    failModel(`The server's models: ${e.message}`);
    return;
  }
  if (!names.length) {
    failModel("This server serves no model.");
    return;
  }
  $("model").replaceChildren(...names.map((n) => new Option(n)));
  $("model").value = names.includes(state.model) ? state.model : names[0];
  await loadModel(state.version, state.class);
}

$("model").addEventListener("change", () => loadModel());
$("version").addEventListener("change", () => loadVersion(++loads));
for (const id of ["seed", "count", "psi"]) $(id).addEventListener("change", drawGrid);
for (const id of ["seed-a", "seed-b", "steps"]) $(id).addEventListener("change", drawStrip);
$("class").addEventListener("change", () => {
  drawGrid();
  drawStrip();
});
$("truncate").addEventListener("change", () => {
  $("psi").disabled = !$("truncate").checked;
  drawGrid();
});
$("psi").addEventListener("input", () => {
  $("psi-value").textContent = Number($("psi").value).toFixed(2);
});
start();
