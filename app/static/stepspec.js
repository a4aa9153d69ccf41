// What the step diagram (step.js) draws and says for each cell kind: the picture's nodes and
// edges, the equations with the char's numbers, and the memory's fate in words.
//
//   PICTURES.lstm.nodes: [id, x, y, kind, label, value?]   (value(v) when not v[id])
//   PICTURES.lstm.edges: {points, width?(v), kind?, arrow?} (width: what flows, 0…1)
//   equations("lstm", v) → [[formula, numbers], ...]
//   words("lstm", v) → [{state, word, on, text}, ...]
//
// v holds one cell's values at one char (step.js valuesAt): i, f, g, o, c, h, cPrev, hPrev, x
// for an LSTM; z, r, n, h, hPrev, x for a GRU; h, hPrev, x for a plain RNN.
// The lines follow the textbook (model/cells/lstm.py, gru.py, rnn.py); Keras's GRU convention
// (reset_after) puts r on the recurrent product, bias included.

const n3 = (v) => (v < 0 ? `−${(-v).toFixed(3)}` : v.toFixed(3));
const p3 = (v) => (v < 0 ? `(${n3(v)})` : n3(v)); // a factor: negative ones in brackets
const HIGH = 0.9; // a gate above this is open (Karpathy et al.'s right-saturated)
const LOW = 0.1; // below this, shut
const WRITE = 0.25; // |what is added to the memory| worth calling a write

/** The line the gates read hₜ₋₁ and x from, with a drop to each gate's bottom edge. */
const bus = (drops, bottom) => [
  { points: [[110, 205], [Math.max(...drops), 205]], arrow: false },
  ...drops.map((x) => ({ points: [[x, 205], [x, bottom]] })),
];

export const PICTURES = {
  lstm: {
    label: "LSTM step: the cell state c runs along the top through the forget gate's × and the " +
      "input's +; the gates read the previous h and the char from the line at the bottom.",
    nodes: [
      ["cPrev", 45, 45, "state", "cₜ₋₁"],
      ["fx", 160, 45, "op", "×"],
      ["plus", 290, 45, "op", "+"],
      ["c", 480, 45, "state", "cₜ"],
      ["f", 160, 140, "gate", "f · σ"],
      ["i", 250, 140, "gate", "i · σ"],
      ["g", 330, 140, "cand", "g · tanh"],
      ["ig", 290, 95, "op", "×"],
      ["o", 410, 140, "gate", "o · σ"],
      ["tc", 480, 110, "fn", "tanh"],
      ["ho", 480, 175, "op", "×"],
      ["h", 480, 240, "state", "hₜ"],
      ["hPrev", 45, 240, "state", "hₜ₋₁"],
      ["x", 45, 175, "input", "xₜ"],
    ],
    edges: [
      { points: [[82, 45], [147, 45]] },
      { points: [[160, 118], [160, 58]] },
      { points: [[173, 45], [277, 45]], width: (v) => v.f, kind: "keep" },
      { points: [[250, 118], [250, 95], [277, 95]] },
      { points: [[330, 118], [330, 95], [303, 95]] },
      { points: [[290, 82], [290, 58]], width: (v) => v.i * v.g, kind: "write" },
      { points: [[303, 45], [443, 45]] },
      { points: [[480, 65], [480, 98]] },
      { points: [[480, 122], [480, 162]] },
      { points: [[443, 140], [455, 140], [455, 175], [467, 175]] },
      { points: [[480, 188], [480, 220]], width: (v) => v.o, kind: "read" },
      { points: [[517, 240], [537, 240]] },
      { points: [[82, 240], [110, 240], [110, 205]], arrow: false },
      { points: [[82, 175], [110, 175], [110, 205]], arrow: false },
      ...bus([160, 250, 330, 410], 163),
    ],
  },
  gru: {
    label: "GRU step: the state h runs along the top; z keeps it, (1 − z) lets the candidate n " +
      "in; r decides how much of the old h the candidate sees.",
    nodes: [
      ["hPrev", 45, 45, "state", "hₜ₋₁"],
      ["zx", 170, 45, "op", "×"],
      ["plus", 330, 45, "op", "+"],
      ["h", 480, 45, "state", "hₜ"],
      ["z", 170, 150, "gate", "z · σ"],
      ["om", 250, 95, "fn", "1 − z"],
      ["nz", 330, 95, "op", "×"],
      ["n", 330, 150, "cand", "n · tanh"],
      ["r", 250, 150, "gate", "r · σ"],
      ["x", 45, 240, "input", "xₜ"],
    ],
    edges: [
      { points: [[82, 45], [157, 45]] },
      { points: [[170, 128], [170, 58]] },
      { points: [[170, 95], [223, 95]] },
      { points: [[277, 95], [317, 95]] },
      { points: [[330, 128], [330, 108]] },
      { points: [[283, 150], [297, 150]] },
      { points: [[183, 45], [317, 45]], width: (v) => v.z, kind: "keep" },
      { points: [[330, 82], [330, 58]], width: (v) => (1 - v.z) * v.n, kind: "write" },
      { points: [[343, 45], [443, 45]], kind: "read" },
      { points: [[517, 45], [537, 45]] },
      { points: [[110, 45], [110, 205]], arrow: false },
      { points: [[82, 240], [110, 240], [110, 205]], arrow: false },
      ...bus([170, 250, 330], 173),
    ],
  },
  rnn: {
    label: "Plain RNN step: the previous h and the char go through one tanh; no gate decides " +
      "what to keep.",
    nodes: [
      ["hPrev", 45, 60, "state", "hₜ₋₁"],
      ["x", 45, 200, "input", "xₜ"],
      ["act", 270, 130, "gate", "tanh", (v) => v.h],
      ["h", 480, 130, "state", "hₜ"],
    ],
    edges: [
      { points: [[82, 60], [150, 60], [150, 130], [235, 130]] },
      { points: [[82, 200], [150, 200], [150, 130]], arrow: false },
      { points: [[305, 130], [443, 130]], kind: "write" },
      { points: [[517, 130], [537, 130]] },
    ],
  },
};

/** The cell's equations, each with this char's numbers. */
export function equations(cell, v) {
  if (cell === "lstm") {
    return [
      ["f = σ(W_f·x + U_f·hₜ₋₁ + b_f)", `= ${n3(v.f)}`],
      ["i = σ(W_i·x + U_i·hₜ₋₁ + b_i)", `= ${n3(v.i)}`],
      ["g = tanh(W_g·x + U_g·hₜ₋₁ + b_g)", `= ${n3(v.g)}`],
      ["o = σ(W_o·x + U_o·hₜ₋₁ + b_o)", `= ${n3(v.o)}`],
      ["cₜ = f·cₜ₋₁ + i·g", `= ${n3(v.f)} × ${p3(v.cPrev)} + ${n3(v.i)} × ${p3(v.g)} = ${n3(v.c)}`],
      ["hₜ = o·tanh(cₜ)", `= ${n3(v.o)} × tanh(${n3(v.c)}) = ${n3(v.h)}`],
    ];
  }
  if (cell === "gru") {
    return [
      ["z = σ(W_z·x + U_z·hₜ₋₁ + b_z)", `= ${n3(v.z)}`],
      ["r = σ(W_r·x + U_r·hₜ₋₁ + b_r)", `= ${n3(v.r)}`],
      ["n = tanh(W_n·x + r·(U_n·hₜ₋₁ + b′_n))", `= ${n3(v.n)}`],
      ["hₜ = (1 − z)·n + z·hₜ₋₁",
        `= ${n3(1 - v.z)} × ${p3(v.n)} + ${n3(v.z)} × ${p3(v.hPrev)} = ${n3(v.h)}`],
    ];
  }
  return [["hₜ = tanh(W·x + U·hₜ₋₁ + b)", `= ${n3(v.h)}`]];
}

/** What happened to the memory at this step, in words; `on` where it clearly happened. */
export function words(cell, v) {
  if (cell === "lstm") {
    const ig = v.i * v.g;
    return [
      { state: "kept", word: "kept", on: v.f >= HIGH,
        text: `Kept: f = ${n3(v.f)} passes cₜ₋₁ on` },
      { state: "erased", word: "erased", on: v.f <= LOW,
        text: `Erased: f = ${n3(v.f)} wipes cₜ₋₁` },
      { state: "written", word: "written", on: Math.abs(ig) >= WRITE,
        text: `Written: i·g = ${n3(ig)} is added to c` },
      { state: "read", word: "read out", on: v.o >= HIGH,
        text: `Read out: o = ${n3(v.o)} shows tanh(c) in h` },
    ];
  }
  if (cell === "gru") {
    const added = (1 - v.z) * v.n;
    return [
      { state: "kept", word: "kept", on: v.z >= HIGH, text: `Kept: z = ${n3(v.z)} passes hₜ₋₁ on` },
      { state: "erased", word: "erased", on: v.z <= LOW,
        text: `Erased: z = ${n3(v.z)}, the candidate n replaces hₜ₋₁` },
      { state: "written", word: "written", on: Math.abs(added) >= WRITE,
        text: `Written: (1 − z)·n = ${n3(added)} goes into h` },
      { state: "read", word: "read out", on: false,
        text: "Read out: always, all of it: a GRU has no output gate, h is its memory" },
    ];
  }
  return [{ state: "written", word: "rewritten", on: true,
    text: "Rewritten: no gate keeps anything; every char rewrites h through one tanh" }];
}
