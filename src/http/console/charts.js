// Inline SVG charts for the analytics view, drawn here (no chart library, nothing from a CDN).
const NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(title, svg, caption) {
  const div = document.createElement("div");
  div.className = "chart";
  const h = document.createElement("h3");
  h.textContent = title;
  div.append(h, svg);
  if (caption) {
    const p = document.createElement("p");
    p.className = "status";
    p.textContent = caption;
    div.append(p);
  }
  return div;
}

function empty(svg, w, h) {
  svg.append(svgEl("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "muted" }, "no data in this range"));
}

const num = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

/** Vertical columns over time (e.g. requests per hour). */
export function columnChart(title, data) {
  const W = 520, H = 200, L = 40, B = 24, T = 10;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, "data-chart": "columns" });
  const max = Math.max(0, ...data.map((d) => d.value));
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }));
  if (!data.length || max === 0) {
    empty(svg, W, H);
    return frame(title, svg);
  }
  const step = (W - L) / data.length;
  const bw = Math.max(1, step * 0.8);
  svg.append(svgEl("text", { x: L - 4, y: T + 4, "text-anchor": "end", class: "muted" }, num(max)));
  svg.append(svgEl("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "muted" }, "0"));
  const labelEvery = Math.ceil(data.length / 8);
  data.forEach((d, i) => {
    const h = ((H - B - T) * d.value) / max;
    const x = L + i * step + (step - bw) / 2;
    const r = svgEl("rect", { x, y: H - B - h, width: bw, height: h, class: "bar" });
    r.append(svgEl("title", {}, `${d.label}: ${d.value}`));
    svg.append(r);
    if (i % labelEvery === 0) svg.append(svgEl("text", { x: x + bw / 2, y: H - 8, "text-anchor": "middle", class: "muted" }, d.label));
  });
  return frame(title, svg);
}

/** Horizontal bars, largest first (formats, top images). */
export function barChart(title, data, fmt = num) {
  const rows = [...data].sort((a, b) => b.value - a.value);
  const W = 520, row = 24, L = 150, R = 60;
  const H = Math.max(60, rows.length * row + 10);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, "data-chart": "bars" });
  const max = Math.max(0, ...rows.map((d) => d.value));
  if (!rows.length || max === 0) {
    empty(svg, W, H);
    return frame(title, svg);
  }
  rows.forEach((d, i) => {
    const y = 5 + i * row;
    const w = ((W - L - R) * d.value) / max;
    const label = d.label.length > 22 ? `${d.label.slice(0, 21)}…` : d.label;
    svg.append(svgEl("text", { x: L - 6, y: y + row * 0.65, "text-anchor": "end" }, label));
    const r = svgEl("rect", { x: L, y: y + 3, width: Math.max(1, w), height: row - 8, class: d.alt ? "bar alt" : "bar" });
    r.append(svgEl("title", {}, `${d.label}: ${fmt(d.value)}`));
    svg.append(r);
    svg.append(svgEl("text", { x: L + w + 6, y: y + row * 0.65, class: "muted" }, fmt(d.value)));
  });
  return frame(title, svg);
}

/** Two or more bars in the given order (e.g. original bytes against bytes served). */
export function pairChart(title, data, fmt, caption) {
  const node = barChart(title, [], fmt);
  const W = 520, row = 32, L = 150, R = 90;
  const H = data.length * row + 10;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, "data-chart": "pair" });
  const max = Math.max(0, ...data.map((d) => d.value));
  if (max === 0) empty(svg, W, H);
  else
    data.forEach((d, i) => {
      const y = 5 + i * row;
      const w = ((W - L - R) * d.value) / max;
      svg.append(svgEl("text", { x: L - 6, y: y + row * 0.6, "text-anchor": "end" }, d.label));
      svg.append(svgEl("rect", { x: L, y: y + 4, width: Math.max(1, w), height: row - 10, class: d.alt ? "bar alt" : "bar" }));
      svg.append(svgEl("text", { x: L + w + 6, y: y + row * 0.6, class: "muted" }, fmt(d.value)));
    });
  node.querySelector("svg").replaceWith(svg);
  if (caption) {
    const p = document.createElement("p");
    p.className = "status";
    p.textContent = caption;
    node.append(p);
  }
  return node;
}
