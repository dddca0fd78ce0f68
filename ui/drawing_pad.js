// The draw page's canvas: white strokes on black, sent to the app as a PNG the moment the pen lifts.
// Loaded by ui/drawing_pad.py as a Streamlit custom component (v2, no iframe, no build step).

const pads = new WeakMap(); // one pad per mounted component; Streamlit calls the export again on every rerun

function makeButton(label, glyph) {
  const button = document.createElement("button");
  button.type = "button";
  button.title = label;
  button.setAttribute("aria-label", label);
  button.textContent = `${glyph} ${label}`;
  return button;
}

function createPad(parent) {
  const wrap = document.createElement("div");
  wrap.className = "pad";
  const canvas = document.createElement("canvas");
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Drawing area: draw one digit with the mouse, a pen or a finger");
  const tools = document.createElement("div");
  tools.className = "tools";
  const undo = makeButton("Undo", "\u21B6");
  const redo = makeButton("Redo", "\u21B7");
  tools.append(undo, redo);
  wrap.append(canvas, tools);
  parent.appendChild(wrap);

  const pad = {
    wrap, canvas, undo, redo,
    ctx: canvas.getContext("2d"),
    strokes: [], undone: [], current: null, pointerId: null,
    generation: null, brush: 22, size: 0, setStateValue: () => {},
  };

  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * (canvas.width / box.width), (event.clientY - box.top) * (canvas.height / box.height)];
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    if (pad.current) return; // a second finger while one draws
    event.preventDefault();
    canvas.focus({ preventScroll: true }); // for Ctrl+Z / Ctrl+Y
    canvas.setPointerCapture(event.pointerId);
    pad.pointerId = event.pointerId;
    pad.current = { width: pad.brush, points: [at(event)] };
    dot(pad, pad.current.points[0], pad.brush);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!pad.current || event.pointerId !== pad.pointerId) return;
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const move of moves.length ? moves : [event]) {
      const points = pad.current.points;
      const point = at(move);
      segment(pad, points[points.length - 1], point, pad.current.width);
      points.push(point);
    }
  });
  const lift = (event) => {
    if (!pad.current || event.pointerId !== pad.pointerId) return;
    pad.strokes.push(pad.current);
    pad.current = null;
    pad.undone = [];
    updateButtons(pad);
    send(pad); // at once: no debounce between the pen lifting and the app hearing of it
  };
  canvas.addEventListener("contextmenu", (event) => event.preventDefault()); // a long press draws a dot, no menu
  canvas.addEventListener("pointerup", lift);
  canvas.addEventListener("pointercancel", lift);
  undo.addEventListener("click", () => step(pad, pad.strokes, pad.undone));
  redo.addEventListener("click", () => step(pad, pad.undone, pad.strokes));
  canvas.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey)) return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) step(pad, pad.strokes, pad.undone);
    else if (key === "y" || (key === "z" && event.shiftKey)) step(pad, pad.undone, pad.strokes);
    else return;
    event.preventDefault();
  });
  return pad;
}

function dot(pad, [x, y], width) {
  pad.ctx.fillStyle = "#FFFFFF";
  pad.ctx.beginPath();
  pad.ctx.arc(x, y, width / 2, 0, 2 * Math.PI);
  pad.ctx.fill();
}

function segment(pad, [x0, y0], [x1, y1], width) {
  const ctx = pad.ctx;
  ctx.strokeStyle = "#FFFFFF";
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

function redraw(pad) {
  pad.ctx.fillStyle = "#000000";
  pad.ctx.fillRect(0, 0, pad.canvas.width, pad.canvas.height);
  for (const stroke of pad.strokes) {
    dot(pad, stroke.points[0], stroke.width);
    for (let i = 1; i < stroke.points.length; i++) segment(pad, stroke.points[i - 1], stroke.points[i], stroke.width);
  }
}

function step(pad, from, to) {
  if (!from.length || pad.current) return;
  to.push(from.pop());
  redraw(pad);
  updateButtons(pad);
  send(pad);
}

function updateButtons(pad) {
  pad.undo.disabled = !pad.strokes.length;
  pad.redo.disabled = !pad.undone.length;
}

function send(pad) {
  const png = pad.strokes.length ? pad.canvas.toDataURL("image/png") : null;
  pad.setStateValue("drawing", { generation: pad.generation, png });
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let pad = pads.get(parentElement);
  if (!pad) {
    pad = createPad(parentElement);
    pads.set(parentElement, pad);
  }
  pad.setStateValue = setStateValue;
  pad.brush = data.brush;
  if (pad.size !== data.size) {
    pad.size = data.size;
    pad.canvas.width = pad.canvas.height = data.size;
    pad.wrap.style.width = `${data.size}px`;
    redraw(pad);
  }
  if (pad.generation !== data.generation) {
    // A new generation is the app's Clear (or an example replacing the drawing): empty the pad and say so.
    // On the first render the app may still hold a drawing this pad never had (it was mounted again): say so too.
    const cleared = pad.generation !== null || data.has_drawing;
    pad.generation = data.generation;
    pad.strokes = [];
    pad.undone = [];
    pad.current = null;
    redraw(pad);
    updateButtons(pad);
    if (cleared) send(pad);
  }
  return () => {
    pads.delete(parentElement);
    pad.wrap.remove();
  };
}
