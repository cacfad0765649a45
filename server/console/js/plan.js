// A job's plan as a graph: EXPLAIN's indented tree (a sink, then each
// operator's inputs one level deeper) laid out left to right, sources
// first, as the rows flow. Sources and sinks carry their figures: rows,
// rows per second and watermark (the engine counts rows at those ends).

import { formatNumber, s } from './ui.js';

/** The plan's operators: [{label, depth, inputs: [...]}], one root per
 * pipeline. */
export function parsePlan(text) {
  const roots = [];
  const stack = [];
  for (const line of String(text || '').split('\n')) {
    if (!line.trim()) continue;
    const depth = Math.floor((line.length - line.trimStart().length) / 2);
    const node = { label: line.trim(), depth, inputs: [] };
    while (stack.length && stack[stack.length - 1].depth >= depth) stack.pop();
    if (stack.length) stack[stack.length - 1].inputs.push(node);
    else roots.push(node);
    stack.push(node);
  }
  return roots;
}

/** Which source or sink figures a plan line stands for, if any. */
export function endOf(label) {
  const source = label.match(/^Source: ([^[,]+)/);
  if (source) return { kind: 'source', table: source[1].trim() };
  const sink = label.match(/^Sink: (.+)$/);
  if (sink) return { kind: 'sink', table: sink[1] === 'print (results)' ? 'results' : sink[1].trim() };
  return null;
}

const BOX_W = 230;
const BOX_H = 44;
const COL = 270;
const ROW = 58;

function clip(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** `figures(label)` gives a line of figures for an operator, or ''. */
export function planGraph(text, figures) {
  const roots = parsePlan(text);
  const placed = [];
  let maxDepth = 0;
  let nextRow = 0;
  // Leaves take the next row; an operator sits level with its inputs.
  function place(node) {
    maxDepth = Math.max(maxDepth, node.depth);
    const rows = node.inputs.map(place);
    node.row = rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : nextRow++;
    placed.push(node);
    return node.row;
  }
  roots.forEach((root) => {
    place(root);
    nextRow += 0.3;
  });
  const x = (node) => 8 + (maxDepth - node.depth) * COL;
  const y = (node) => 8 + node.row * ROW;
  const edges = placed.flatMap((node) => node.inputs.map((input) => {
    const x1 = x(input) + BOX_W;
    const y1 = y(input) + BOX_H / 2;
    const x2 = x(node);
    const y2 = y(node) + BOX_H / 2;
    const mid = (x1 + x2) / 2;
    return s('path', { class: 'edge', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' });
  }));
  const boxes = placed.map((node) => {
    const end = endOf(node.label);
    return s('g', { class: `node ${end ? end.kind : ''}` },
      s('title', {}, node.label),
      s('rect', { x: x(node), y: y(node), width: BOX_W, height: BOX_H, rx: 4 }),
      s('text', { class: 'label', x: x(node) + 8, y: y(node) + 17 }, clip(node.label, 34)),
      s('text', { x: x(node) + 8, y: y(node) + 34 }, clip(figures(node.label) || '', 40)));
  });
  const width = (maxDepth + 1) * COL;
  const height = (Math.max(0, ...placed.map((node) => node.row)) + 1) * ROW + 8;
  const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 6, markerHeight: 6, orient: 'auto' },
    s('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#9aa6b4' })));
  return s('svg', { class: 'chart plan', viewBox: `0 0 ${width} ${height}`, style: `max-width: ${width}px`, role: 'img', 'aria-label': 'job plan' },
    defs, edges, boxes);
}

export const rowsLine = (rows, perSecond) => `${formatNumber(rows)} rows${perSecond === null ? '' : ` · ${formatNumber(perSecond, 1)}/s`}`;
