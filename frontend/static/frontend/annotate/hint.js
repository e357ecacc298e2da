// The active model's hint (campaigns with suggestions on): its predicted heatmaps, tinted and
// drawn over the image by the viewer, and turned into points when the rater accepts them.
// Maps are grayscale PNGs at the model's resolution (same origin, so their pixels are readable).

const TINTS = {
  implausibility: [255, 176, 0], // amber: not the red of the rater's own points
  misalignment: [0, 200, 255], // cyan
};
const THRESHOLD = 128; // map byte: "more likely than not"
const MAX_POINTS = 24; // per colour; a hint is a start, not an answer

async function readMap(url) {
  if (!url) return null;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  try {
    await img.decode();
  } catch {
    return null;
  }
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, c.width, c.height);
}

// {canvas, maps: {implausibility, misalignment}} or null when no map could be read.
export async function loadHint(suggestion) {
  const [implausibility, misalignment] = await Promise.all([
    readMap(suggestion.implausibility_url),
    readMap(suggestion.misalignment_url),
  ]);
  const maps = { implausibility, misalignment };
  const present = Object.values(maps).filter(Boolean);
  if (!present.length) return null;
  const w = Math.max(...present.map((m) => m.width));
  const h = Math.max(...present.map((m) => m.height));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  for (const [task, map] of Object.entries(maps)) {
    if (!map) continue;
    // Tint: the map's value becomes the alpha of a flat colour, so "unlikely" stays clear.
    const layer = new ImageData(map.width, map.height);
    const [r, g, b] = TINTS[task];
    for (let i = 0; i < map.data.length; i += 4) {
      layer.data[i] = r;
      layer.data[i + 1] = g;
      layer.data[i + 2] = b;
      layer.data[i + 3] = map.data[i];
    }
    const tmp = document.createElement("canvas");
    tmp.width = map.width;
    tmp.height = map.height;
    tmp.getContext("2d").putImageData(layer, 0, 0);
    ctx.drawImage(tmp, 0, 0, w, h);
  }
  return { canvas, maps };
}

// Points (original image pixels) that cover a map's likely regions: the likeliest pixel first,
// then the next one no point's disk covers yet, until no likely pixel is left uncovered.
export function pointsFromMap(map, width, height, radiusFraction) {
  if (!map) return [];
  const sx = width / map.width;
  const sy = height / map.height;
  const r = radiusFraction * height;
  const candidates = [];
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      const v = map.data[(y * map.width + x) * 4];
      if (v >= THRESHOLD) candidates.push([v, (x + 0.5) * sx, (y + 0.5) * sy]);
    }
  }
  candidates.sort((a, b) => b[0] - a[0]);
  const points = [];
  for (const [, x, y] of candidates) {
    if (points.length >= MAX_POINTS) break;
    if (points.some(([px, py]) => Math.hypot(px - x, py - y) < r)) continue;
    points.push([x, y]);
  }
  return points;
}
