// The Map page's map: every detection, drawn by deck.gl from binary columns.
//
// Python sends one binary message (review/analysis/map_payload.py): a JSON header and typed
// arrays. The columns (ids, positions, statuses, footprints) are kept here, in the module,
// across reruns and page visits; later messages carry only the detections whose status
// changed. Picking is done here on the CPU over the typed arrays (no picking pass over a
// million instances), so a click is handled in milliseconds and comes back as a detection id.

const MAGIC = [82, 86, 77, 65, 80, 0, 1, 0];
const TYPES = {int32: Int32Array, uint32: Uint32Array, uint16: Uint16Array, uint8: Uint8Array,
               float32: Float32Array};
const FOOTPRINT_ZOOM = 10;        // footprints drawn from this zoom on; dots always
const DOT_METRES = 60;
const DOT_MIN_PX = 2.5;
const DOT_MAX_PX = 4;
const PICK_SLACK_PX = 2;
const CLICK_MOVE_PX = 5;
const VIEW_REQUEST_MS = 350;
// Far out, a large map draws cells of CELL_PX pixels (the top status in each) in place of a
// dot per detection: software WebGL pays per pixel drawn, and a million overlapping dots
// cost seconds a frame. Reviewed detections keep their dots above the cells.
const CELL_MIN_DETECTIONS = 100000;
const CELL_MAX_ZOOM = 9;
const CELL_PX = 3;

// What survives reruns and page visits in this tab: the columns of the last base message.
const kept = {token: null, base: null, lastView: null, deckLoading: null, naturalEarth: null};

function parse(bytes) {
  let u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  for (let k = 0; k < 8; k++) if (u8[k] !== MAGIC[k]) throw new Error("not a map message");
  u8 = u8.slice();                      // our own aligned copy, kept while the map lives
  const length = new DataView(u8.buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(12, 12 + length)));
  const start = 12 + length;
  const arrays = {};
  for (const [name, [type, offset, size]] of Object.entries(header.arrays || {})) {
    arrays[name] = new TYPES[type](u8.buffer, start + offset, size);
  }
  return {header, arrays};
}

// Streamlit's own deck.gl chart (st.pydeck_chart: the Sites page) bundles another version
// of deck.gl and luma.gl, and each refuses to start where the other version's global is set
// ("multiple versions detected"). Ours loads with those globals set aside and leaves none
// behind: this module holds it (deckLib), whichever page of the tab came first.
let deckLib = null;
const LIBRARY_GLOBALS = ["deck", "luma"];

function loadScript(url) {
  if (deckLib) return Promise.resolve(deckLib);
  if (!kept.deckLoading) {
    kept.deckLoading = new Promise((resolve, reject) => {
      const theirs = Object.fromEntries(LIBRARY_GLOBALS.map((name) => [name, globalThis[name]]));
      const restore = () => {
        for (const name of LIBRARY_GLOBALS) {
          if (theirs[name] === undefined) delete globalThis[name];
          else globalThis[name] = theirs[name];
        }
      };
      for (const name of LIBRARY_GLOBALS) delete globalThis[name];
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => {
        const lib = globalThis.deck;
        restore();
        if (lib && lib.Deck) { deckLib = lib; resolve(lib); return; }
        kept.deckLoading = null;
        reject(new Error("deck.gl did not load"));
      };
      script.onerror = () => {
        restore();
        kept.deckLoading = null;
        reject(new Error("deck.gl could not be loaded from " + url));
      };
      document.head.appendChild(script);
    });
  }
  return kept.deckLoading;
}

function loadNaturalEarth(url) {
  if (!kept.naturalEarth) {
    kept.naturalEarth = fetch(url).then(r => (r.ok ? r.json() : null)).catch(() => null);
  }
  return kept.naturalEarth;
}

function webglAvailable() {
  try {
    const canvas = document.createElement("canvas");
    return !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

// ------------------------------------------------------------------ the columns

function footprintsFrom(arrays, prefix) {
  const owner = arrays[prefix + "_owner"], starts = arrays[prefix + "_starts"], xy = arrays[prefix + "_xy"];
  if (!owner || owner.length === 0) return null;
  const parts = owner.length;
  const box = new Float32Array(parts * 4);      // west, south, east, north of each part
  for (let p = 0; p < parts; p++) {
    let w = Infinity, s = Infinity, e = -Infinity, n = -Infinity;
    for (let v = starts[p]; v < starts[p + 1]; v++) {
      const x = xy[2 * v], y = xy[2 * v + 1];
      if (x < w) w = x; if (x > e) e = x; if (y < s) s = y; if (y > n) n = y;
    }
    box[4 * p] = w; box[4 * p + 1] = s; box[4 * p + 2] = e; box[4 * p + 3] = n;
  }
  return {owner, starts, xy, box, parts, vertices: starts[parts]};
}

function makeBase(header, arrays) {
  const base = {
    token: header.token, n: header.n, ids: arrays.ids, lonlat: arrays.lonlat,
    baseStatus: arrays.status, status: new Uint8Array(arrays.status), source: arrays.source,
    period: arrays.period, score: arrays.score, statuses: header.statuses, sources: header.sources,
    periods: header.periods, last: new Map(Object.entries(header.last || {}).map(([k, v]) => [Number(k), v])),
    colours: header.colours, labels: header.labels, bounds: header.bounds, view: header.view,
    allFootprints: header.all_footprints, fp: footprintsFrom(arrays, "fp"), vf: null, vfBox: null,
    changed: new Set(), sortedIds: null, sortedRows: null, version: 0,
  };
  base.pending = base.statuses.indexOf("pending");
  base.palette = base.statuses.map(s => (base.colours[s] || [0, 0, 0]));
  return base;
}

function rowOf(base, id) {
  if (!base.sortedRows) {
    const rows = new Int32Array(base.n);
    for (let k = 0; k < base.n; k++) rows[k] = k;
    rows.sort((a, b) => base.ids[a] - base.ids[b]);
    base.sortedRows = rows;
  }
  const rows = base.sortedRows;
  let lo = 0, hi = rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, value = base.ids[rows[mid]];
    if (value === id) return rows[mid];
    if (value < id) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

function applyChanges(base, changes) {
  let any = false;
  for (const [id, status, words] of changes || []) {
    const row = rowOf(base, id);
    if (row < 0) continue;
    let code = base.statuses.indexOf(status);
    if (code < 0) {
      base.statuses.push(status);
      base.palette.push(base.colours[status] || [0, 0, 0]);
      code = base.statuses.length - 1;
    }
    if (base.status[row] !== code || base.last.get(id) !== (words || undefined)) any = true;
    base.status[row] = code;
    if (words) base.last.set(id, words); else base.last.delete(id);
    base.changed.add(row);
  }
  if (any) base.version++;
  return any;
}

// Rows drawn above the rest: every reviewed detection, and any whose status changed here.
function overlayRows(base) {
  const rows = [];
  for (let k = 0; k < base.n; k++) if (base.baseStatus[k] !== base.pending) rows.push(k);
  for (const k of base.changed) if (base.baseStatus[k] === base.pending) rows.push(k);
  const rank = s => base.statuses.length > 0 ? s : 0;
  rows.sort((a, b) => rank(base.status[a]) - rank(base.status[b]) || a - b);
  return Int32Array.from(rows);
}

function dotColours(base, rows) {
  const count = rows ? rows.length : base.n;
  const out = new Uint8Array(count * 4);
  for (let k = 0; k < count; k++) {
    const row = rows ? rows[k] : k;
    const c = base.palette[base.status[row]];
    out[4 * k] = c[0]; out[4 * k + 1] = c[1]; out[4 * k + 2] = c[2]; out[4 * k + 3] = 255;
  }
  return out;
}

function tooltipText(base, row) {
  const status = base.statuses[base.status[row]];
  const parts = [base.labels[status] || status, base.sources[base.source[row]]];
  const score = base.score[row];
  if (!Number.isNaN(score)) parts.push("score " + score.toFixed(2));
  const period = base.periods[base.period[row]];
  if (period) parts.push(period);
  const last = base.last.get(base.ids[row]);
  if (last) parts.push(last);
  return "#" + base.ids[row] + " · " + parts.join(" · ");
}

// ------------------------------------------------------------------ picking on the CPU

function dotRadiusPx(viewport, latitude) {
  const metresPerPixel = 40075016.686 * Math.cos(latitude * Math.PI / 180) / (512 * Math.pow(2, viewport.zoom));
  return Math.min(Math.max(DOT_METRES / metresPerPixel, DOT_MIN_PX), DOT_MAX_PX);
}

function insideRing(xy, from, to, x, y) {
  let inside = false;
  for (let i = from, j = to - 1; i < to; j = i++) {
    const xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// The detection drawn on top at this pixel, or -1: dots first (they lie above the
// footprints), the overlay of reviewed ones above the rest, later rows above earlier ones.
function pick(state, x, y) {
  const base = state.base, viewport = state.viewport();
  if (!base || !viewport) return -1;
  const [lon, lat] = viewport.unproject([x, y]);
  const cells = base.n >= CELL_MIN_DETECTIONS && viewport.zoom < CELL_MAX_ZOOM;
  const radius = Math.max(dotRadiusPx(viewport, lat), cells ? CELL_PX : 0) + PICK_SLACK_PX;
  const pxPerDegree = 512 * Math.pow(2, viewport.zoom) / 360;
  const dLon = radius / pxPerDegree, dLat = dLon * Math.max(Math.cos(lat * Math.PI / 180), 0.05);
  const near = (row) => {
    const px = base.lonlat[2 * row], py = base.lonlat[2 * row + 1];
    if (Math.abs(px - lon) > dLon * 1.5 || Math.abs(py - lat) > dLat * 1.5) return false;
    const [sx, sy] = viewport.project([px, py]);
    return (sx - x) * (sx - x) + (sy - y) * (sy - y) <= radius * radius;
  };
  const overlay = state.overlay;
  for (let k = overlay.length - 1; k >= 0; k--) if (near(overlay[k])) return overlay[k];
  for (let row = base.n - 1; row >= 0; row--) {
    const px = base.lonlat[2 * row], py = base.lonlat[2 * row + 1];
    if (Math.abs(px - lon) > dLon * 1.5 || Math.abs(py - lat) > dLat * 1.5) continue;
    if (near(row)) return row;
  }
  if (viewport.zoom < FOOTPRINT_ZOOM) return -1;
  for (const fp of [base.vf, base.fp]) {
    if (!fp) continue;
    let best = -1, bestRank = -1;
    for (let p = 0; p < fp.parts; p++) {
      if (lon < fp.box[4 * p] || lon > fp.box[4 * p + 2] || lat < fp.box[4 * p + 1] || lat > fp.box[4 * p + 3]) continue;
      if (!insideRing(fp.xy, fp.starts[p], fp.starts[p + 1], lon, lat)) continue;
      const rank = base.status[fp.owner[p]];
      if (rank >= bestRank) { best = fp.owner[p]; bestRank = rank; }
    }
    if (best >= 0) return best;
  }
  return -1;
}

// ------------------------------------------------------------------ layers

// Natural Earth, offline, is drawn with Canvas 2D under deck.gl's canvas, not as deck.gl
// layers: with software WebGL the path and text layers' shaders cost 2-3 s after the first
// frame (measured), while projecting 40,000 vertices on the CPU takes milliseconds.
const WORLD = 512;                    // deck.gl's Web Mercator world size at zoom 0, in pixels

function worldXY(lon, lat) {
  const phi = Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180;
  return [WORLD * (lon + 180) / 360,
          WORLD * (Math.PI - Math.log(Math.tan(Math.PI / 4 + phi / 2))) / (2 * Math.PI)];
}

// GeoJSON lines and polygons -> {xy: world coordinates, starts: where each path begins}.
function worldPaths(collection) {
  const xy = [], starts = [0];
  const line = (coords) => {
    for (const [lon, lat] of coords) xy.push(...worldXY(lon, lat));
    starts.push(xy.length / 2);
  };
  for (const feature of (collection && collection.features) || []) {
    const g = feature.geometry;
    if (!g) continue;
    if (g.type === "LineString") line(g.coordinates);
    else if (g.type === "MultiLineString" || g.type === "Polygon") g.coordinates.forEach(line);
    else if (g.type === "MultiPolygon") g.coordinates.forEach(p => p.forEach(line));
  }
  return {xy: Float64Array.from(xy), starts: Int32Array.from(starts)};
}

function naturalEarthPaths(ne) {
  if (!ne) return null;
  if (!ne._paths) {
    const places = ((ne.places && ne.places.features) || []).map(f => ({
      xy: worldXY(f.geometry.coordinates[0], f.geometry.coordinates[1]),
      name: f.properties.name, rank: f.properties.rank ?? 0}));
    ne._paths = {lakes: worldPaths(ne.lakes), coastlines: worldPaths(ne.coastlines),
                 rivers: worldPaths(ne.rivers), borders: worldPaths(ne.borders), places};
  }
  return ne._paths;
}

function drawUnderlay(state) {
  const canvas = state.underlay, holder = state.elements[0];
  const width = holder.clientWidth, height = holder.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, width, height);
  const paths = !state.basemapOk && naturalEarthPaths(state.naturalEarth);
  if (!paths || !state.viewState) return;
  const {longitude, latitude, zoom} = state.viewState;
  const scale = Math.pow(2, zoom), [cx, cy] = worldXY(longitude, latitude);
  const ox = width / 2 - cx * scale, oy = height / 2 - cy * scale;
  const trace = ({xy, starts}) => {
    context.beginPath();
    for (let p = 0; p + 1 < starts.length; p++) {
      for (let k = starts[p]; k < starts[p + 1]; k++) {
        const x = xy[2 * k] * scale + ox, y = xy[2 * k + 1] * scale + oy;
        if (k === starts[p]) context.moveTo(x, y); else context.lineTo(x, y);
      }
    }
  };
  context.lineWidth = 1;
  trace(paths.lakes); context.fillStyle = "rgb(190, 214, 230)"; context.fill("evenodd");
  for (const [name, colour] of [["coastlines", "rgb(120, 150, 170)"], ["rivers", "rgb(110, 160, 210)"],
                                ["borders", "rgb(120, 120, 120)"]]) {
    trace(paths[name]); context.strokeStyle = colour; context.stroke();
  }
  const maxRank = zoom < 4 ? 1 : zoom < 5 ? 3 : zoom < 6 ? 5 : zoom < 7 ? 7 : 99;
  context.font = "12px sans-serif";
  context.textBaseline = "middle";
  for (const place of paths.places) {
    if (place.rank > maxRank) continue;
    const x = place.xy[0] * scale + ox, y = place.xy[1] * scale + oy;
    if (x < -200 || y < -20 || x > width + 20 || y > height + 20) continue;
    const textWidth = context.measureText(place.name).width;
    context.fillStyle = "rgba(255, 255, 255, 0.67)";
    context.fillRect(x + 3, y - 8, textWidth + 4, 16);
    context.fillStyle = "rgb(60, 60, 60)";
    context.beginPath(); context.arc(x, y, 2, 0, 2 * Math.PI); context.fill();
    context.fillText(place.name, x + 5, y);
  }
}

function scheduleUnderlay(state) {
  if (state.underlayFrame) return;
  state.underlayFrame = requestAnimationFrame(() => { state.underlayFrame = 0; drawUnderlay(state); });
}

// The same data object while the geometry is the same: deck.gl then keeps its tessellation
// and uploads only what changed (the colours, by their update trigger).
const footprintData = new WeakMap();

function footprintLayer(deck, id, base, fp, visible) {
  if (!footprintData.has(fp)) {
    footprintData.set(fp, {length: fp.parts, startIndices: fp.starts,
                           attributes: {getPolygon: {value: fp.xy, size: 2}}});
  }
  return new deckLib.SolidPolygonLayer({
    id, visible, _normalize: false, pickable: false, data: footprintData.get(fp),
    getFillColor: (_, {index}) => {
      const c = base.palette[base.status[fp.owner[index]]];
      return [c[0], c[1], c[2], 130];
    },
    updateTriggers: {getFillColor: base.version},
  });
}

function cellData(base, level) {
  const size = CELL_PX * 360 / (512 * Math.pow(2, level));
  const index = new Map();
  const xs = [], ys = [], codes = [];
  for (let k = 0; k < base.n; k++) {
    const cx = Math.floor(base.lonlat[2 * k] / size), cy = Math.floor(base.lonlat[2 * k + 1] / size);
    const key = (cx + 1048576) * 2097152 + (cy + 1048576);
    const at = index.get(key);
    if (at === undefined) {
      index.set(key, xs.length);
      xs.push((cx + 0.5) * size); ys.push((cy + 0.5) * size); codes.push(base.status[k]);
    } else if (base.status[k] > codes[at]) {
      codes[at] = base.status[k];
    }
  }
  const count = xs.length, positions = new Float32Array(count * 2), colours = new Uint8Array(count * 4);
  for (let c = 0; c < count; c++) {
    positions[2 * c] = xs[c]; positions[2 * c + 1] = ys[c];
    const rgb = base.palette[codes[c]];
    colours[4 * c] = rgb[0]; colours[4 * c + 1] = rgb[1]; colours[4 * c + 2] = rgb[2]; colours[4 * c + 3] = 255;
  }
  return {length: count, attributes: {getPosition: {value: positions, size: 2},
                                      getFillColor: {value: colours, size: 4, normalized: true}}};
}

function cellLayer(deck, id, data) {
  return new deckLib.ScatterplotLayer({
    id, pickable: false, stroked: false, antialiasing: false, radiusUnits: "pixels",
    getRadius: CELL_PX / 2 + 0.25, data,
  });
}

function dotLayer(deck, id, data) {
  return new deckLib.ScatterplotLayer({
    id, pickable: false, stroked: false, radiusUnits: "meters", getRadius: DOT_METRES,
    radiusMinPixels: DOT_MIN_PX, radiusMaxPixels: DOT_MAX_PX, data,
  });
}

function dotData(positions, colours, count) {
  return {length: count, attributes: {getPosition: {value: positions, size: 2},
                                      getFillColor: {value: colours, size: 4, normalized: true}}};
}

function gatherPositions(base, rows) {
  const out = new Float32Array(rows.length * 2);
  for (let k = 0; k < rows.length; k++) {
    out[2 * k] = base.lonlat[2 * rows[k]]; out[2 * k + 1] = base.lonlat[2 * rows[k] + 1];
  }
  return out;
}

// ------------------------------------------------------------------ the map

function sentence(root, text) {
  root.innerHTML = "";
  const note = document.createElement("div");
  note.className = "map-sentence";
  note.setAttribute("role", "status");
  note.textContent = text;
  root.appendChild(note);
}

// The view's bounds (west, south, east, north), from the last view state seen (deck.gl's own
// viewport lags one event behind inside onViewStateChange).
function currentBounds(state) {
  const holder = state.elements && state.elements[0];
  if (state.viewState && holder && holder.clientWidth) {
    return new state.deck.WebMercatorViewport({...state.viewState, width: holder.clientWidth,
                                               height: holder.clientHeight}).getBounds();
  }
  const viewport = state.viewport && state.viewport();
  return viewport ? viewport.getBounds() : null;
}

function buildLayers(state) {
  const {deck, base} = state;
  const zoom = state.zoom;
  const layers = [];
  if (state.basemapUrl && state.basemapOk) {
    layers.push(new deckLib.TileLayer({
      id: "basemap", data: state.basemapUrl, minZoom: 0, maxZoom: 19, tileSize: 256,
      onTileError: () => state.basemapFailed(),
      renderSubLayers: props => {
        const {west, south, east, north} = props.tile.bbox;
        return new deckLib.BitmapLayer(props, {data: null, image: props.data, bounds: [west, south, east, north]});
      },
    }));
  }
  const showFootprints = zoom >= FOOTPRINT_ZOOM;
  // Footprint layers are made the first time they are seen (tessellating 200,000 polygons
  // takes seconds), then kept, hidden when zoomed out.
  if (showFootprints) state.footprintsMade = true;
  if (state.footprintsMade) {
    if (base.fp) layers.push(footprintLayer(deck, "footprints", base, base.fp, showFootprints));
    if (base.vf) layers.push(footprintLayer(deck, "view-footprints-" + base.vfSerial, base, base.vf, showFootprints));
  }
  if (!state.dots || state.dotVersion !== base.version) {
    state.overlay = overlayRows(base);
    state.dots = dotData(base.lonlat, dotColours(base, null), base.n);
    state.overlayDots = dotData(gatherPositions(base, state.overlay), dotColours(base, state.overlay),
                                state.overlay.length);
    state.dotVersion = base.version;
  }
  if (base.n >= CELL_MIN_DETECTIONS && zoom < CELL_MAX_ZOOM) {
    const level = Math.max(0, Math.floor(zoom)), key = level + ":" + base.version;
    if (state.cellsKey !== key) { state.cells = cellData(base, level); state.cellsKey = key; }
    layers.push(cellLayer(deck, "cells-" + level, state.cells));
  } else if (base.n >= CELL_MIN_DETECTIONS && currentBounds(state)) {
    // Zoomed in on a large map: only the dots in and around the view go to the GPU (software
    // WebGL would otherwise run the vertex shader for every detection, every frame).
    const [west, south, east, north] = currentBounds(state);
    const box = state.inViewBox;
    if (!box || state.inViewVersion !== base.version || west < box[0] || south < box[1] || east > box[2] || north > box[3]) {
      const dx = east - west, dy = north - south;
      const padded = [west - dx, south - dy, east + dx, north + dy];
      const rows = [];
      for (let k = 0; k < base.n; k++) {
        const x = base.lonlat[2 * k], y = base.lonlat[2 * k + 1];
        if (x >= padded[0] && x <= padded[2] && y >= padded[1] && y <= padded[3]) rows.push(k);
      }
      const picked = Int32Array.from(rows);
      state.inView = dotData(gatherPositions(base, picked), dotColours(base, picked), picked.length);
      state.inViewBox = padded;
      state.inViewVersion = base.version;
    }
    layers.push(dotLayer(deck, "dots-in-view", state.inView));
  } else {
    layers.push(dotLayer(deck, "dots", state.dots));
  }
  layers.push(dotLayer(deck, "reviewed-dots", state.overlayDots));
  if (state.hover >= 0) {
    const row = state.hover;
    layers.push(new deckLib.ScatterplotLayer({
      id: "hover", data: [row], getPosition: r => [base.lonlat[2 * r], base.lonlat[2 * r + 1]],
      getRadius: 7, radiusUnits: "pixels", stroked: true, filled: false,
      getLineColor: [255, 230, 0, 255], lineWidthMinPixels: 2}));
  }
  return layers;
}

function createMap(root, data, component) {
  const {setTriggerValue, setStateValue} = component;
  const state = {root, deck: deckLib, base: kept.base, zoom: 0, hover: -1, overlay: new Int32Array(0),
                 basemapUrl: data.basemap_url || null, basemapOk: false, naturalEarth: null,
                 setTriggerValue, setStateValue, viewTimer: null, lastRequest: null};
  root.innerHTML = "";
  const holder = document.createElement("div");
  holder.className = "map-holder";
  root.appendChild(holder);
  const underlay = document.createElement("canvas");
  underlay.className = "map-underlay";
  holder.appendChild(underlay);
  state.underlay = underlay;
  const tooltip = document.createElement("div");
  tooltip.className = "map-tooltip";
  tooltip.hidden = true;
  root.appendChild(tooltip);
  const status = document.createElement("div");
  status.className = "map-status";
  status.hidden = true;
  root.appendChild(status);
  const credit = document.createElement("div");
  credit.className = "map-credit";
  credit.textContent = data.basemap_name ? data.basemap_name : "";
  root.appendChild(credit);
  state.tooltip = tooltip; state.statusLine = status;
  state.elements = [holder, tooltip, status, credit];

  const base = kept.base;
  const initial = (kept.lastView && kept.lastView.token === base.token) ? kept.lastView.view : base.view;
  state.zoom = initial.zoom;
  state.viewState = {...initial, pitch: 0, bearing: 0};
  state.basemapFailed = () => {
    if (state.basemapOk || state.basemapGaveUp) return;
    state.basemapGaveUp = true;
    state.basemapUrl = null;            // stop asking: offline, draw Natural Earth instead
    credit.textContent = "Natural Earth (offline basemap)";
    state.redraw();
    state.root.dispatchEvent(new CustomEvent("basemap-failed", {bubbles: true, composed: true}));
  };
  state.redraw = () => {
    if (state.map) state.map.setProps({layers: buildLayers(state)});
    scheduleUnderlay(state);
  };
  new ResizeObserver(() => scheduleUnderlay(state)).observe(holder);
  state.viewport = () => {
    const viewports = state.map && state.map.getViewports();
    return viewports && viewports.length ? viewports[0] : null;
  };
  state.map = new deckLib.Deck({
    parent: holder, width: "100%", height: "100%", useDevicePixels: 1,
    initialViewState: {...initial, pitch: 0, bearing: 0}, controller: {doubleClickZoom: true},
    layers: [],
    onViewStateChange: ({viewState}) => {
      const bucket = (z) => (z >= FOOTPRINT_ZOOM ? 99 : Math.floor(z));
      const redraw = bucket(viewState.zoom) !== bucket(state.zoom);
      state.zoom = viewState.zoom;
      state.viewState = viewState;
      kept.lastView = {token: kept.base && kept.base.token, view: {longitude: viewState.longitude,
                       latitude: viewState.latitude, zoom: viewState.zoom}};
      const box = state.inViewBox, big = state.base && state.base.n >= CELL_MIN_DETECTIONS;
      let outside = false;
      if (big && viewState.zoom >= CELL_MAX_ZOOM && state.map) {
        const bounds = currentBounds(state);
        outside = !box || !bounds || bounds[0] < box[0] || bounds[1] < box[1] || bounds[2] > box[2] || bounds[3] > box[3];
      }
      if (redraw || outside) state.redraw(); else scheduleUnderlay(state);
      scheduleViewRequest(state);
      tooltip.hidden = true;
    },
    onAfterRender: () => {
      if (!state.root.dataset.drawn && state.map && state.map.props.layers.length) {
        state.root.dataset.drawn = String(performance.now());
      }
    },
  });
  state.redraw();
  // Detections first; the basemap's tiles join them once its first tile loads, and offline
  // Natural Earth is drawn under them (Canvas 2D) as soon as it arrives.
  state.redraw();
  if (data.natural_earth_url) {
    loadNaturalEarth(data.natural_earth_url).then(ne => { state.naturalEarth = ne; state.redraw(); });
  }
  if (state.basemapUrl) {
    const probe = new Image();
    probe.onload = () => { if (!state.basemapGaveUp) { state.basemapOk = true; state.redraw(); } };
    probe.onerror = () => state.basemapFailed();
    probe.src = state.basemapUrl.replace("{z}", "2").replace("{x}", "1").replace("{y}", "2");
  }

  // Hover and click, picked on the CPU.
  let down = null, frame = 0, lastMove = null;
  const local = (event) => {
    const rect = holder.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  };
  holder.addEventListener("pointermove", (event) => {
    lastMove = event;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (down) return;
      const [x, y] = local(lastMove);
      const row = pick(state, x, y);
      if (row !== state.hover) { state.hover = row; state.redraw(); }
      if (row >= 0) {
        tooltip.textContent = tooltipText(state.base, row);
        tooltip.style.left = (x + 14) + "px"; tooltip.style.top = (y + 14) + "px";
        tooltip.hidden = false;
        holder.style.cursor = "pointer";
      } else {
        tooltip.hidden = true;
        holder.style.cursor = "";
      }
    });
  });
  holder.addEventListener("pointerleave", () => { tooltip.hidden = true; });
  holder.addEventListener("pointerdown", (event) => { down = {x: event.clientX, y: event.clientY}; }, true);
  holder.addEventListener("pointerup", (event) => {
    const start = down;
    down = null;
    if (!start || event.button !== 0) return;
    if (Math.hypot(event.clientX - start.x, event.clientY - start.y) > CLICK_MOVE_PX) return;
    const [x, y] = local(event);
    const row = pick(state, x, y);
    if (row < 0) return;
    const id = state.base.ids[row];
    status.textContent = "Opening #" + id + " in Review…";
    status.hidden = false;
    state.setTriggerValue("open", id);
  }, true);

  // For benchmarks and tests: where a detection is drawn on the page, and the view.
  window.__reviewMap = {
    token: () => kept.base && kept.base.token,
    drawn: () => Number(state.root.dataset.drawn || 0),
    screenOf: (id) => {
      const viewport = state.viewport(), row = rowOf(state.base, id);
      if (!viewport || row < 0) return null;
      const [x, y] = viewport.project([state.base.lonlat[2 * row], state.base.lonlat[2 * row + 1]]);
      const rect = holder.getBoundingClientRect();
      if (x < 0 || y < 0 || x > rect.width || y > rect.height) return null;
      return [rect.left + x, rect.top + y];
    },
    onScreen: (limit) => {
      const viewport = state.viewport(), base = state.base, out = [];
      if (!viewport) return out;
      const rect = holder.getBoundingClientRect();
      const step = Math.max(1, Math.floor(base.n / 200000));
      for (let row = 0; row < base.n && out.length < (limit || 100); row += step) {
        const [x, y] = viewport.project([base.lonlat[2 * row], base.lonlat[2 * row + 1]]);
        if (x > 10 && y > 10 && x < rect.width - 10 && y < rect.height - 10) out.push(base.ids[row]);
      }
      return out;
    },
    statusOf: (id) => {
      const row = rowOf(state.base, id);
      return row < 0 ? null : state.base.statuses[state.base.status[row]];
    },
    setView: (view) => {
      state.map.setProps({initialViewState: {...view, pitch: 0, bearing: 0, transitionDuration: 0}});
      state.zoom = view.zoom;             // a view set from outside sends no view-change event
      state.viewState = {...view, pitch: 0, bearing: 0};
      state.redraw();
      scheduleViewRequest(state);
    },
    basemap: () => (state.basemapOk ? "online" : state.naturalEarth ? "natural-earth" : "none"),
    underlayPainted: () => {           // pixels Natural Earth covers on the canvas under the map
      const {width, height} = state.underlay;
      if (!width || !height) return 0;
      const pixels = state.underlay.getContext("2d").getImageData(0, 0, width, height).data;
      let painted = 0;
      for (let k = 3; k < pixels.length; k += 4) if (pixels[k] > 0) painted++;
      return painted;
    },
    footprintsInView: () => (state.base.vf ? state.base.vf.parts : 0),
    pick: (x, y) => { const row = pick(state, x, y); return row < 0 ? null : state.base.ids[row]; },
  };
  return state;
}

// When zoomed in on a map that holds only some footprints, ask Python for those in view.
function scheduleViewRequest(state) {
  const base = state.base;
  if (!base || base.allFootprints) return;
  clearTimeout(state.viewTimer);
  state.viewTimer = setTimeout(() => {
    const viewport = state.viewport();
    if (!viewport || viewport.zoom < FOOTPRINT_ZOOM) return;
    const [west, south, east, north] = viewport.getBounds();
    const box = base.vfBox;
    if (box && box.complete && west >= box.bbox[0] && south >= box.bbox[1] && east <= box.bbox[2] && north <= box.bbox[3]) return;
    const pad = 0.5;            // ask for a margin around the view: small pans need nothing new
    const dx = (east - west) * pad, dy = (north - south) * pad;
    const request = [west - dx, south - dy, east + dx, north + dy].map(v => Math.round(v * 1e4) / 1e4);
    state.lastRequest = request;
    state.setStateValue("view", request);
  }, VIEW_REQUEST_MS);
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const root = parentElement.querySelector(".detection-map");
  if (!root || !data) return;
  if (!webglAvailable()) {
    sentence(root, "This browser cannot draw the map: WebGL is turned off or not supported. " +
             "The table below lists the same detections, and opens any of them in Review.");
    return;
  }
  let message;
  try {
    message = parse(data);
  } catch (error) {
    sentence(root, "The map could not read its data (" + error.message + "). Reload the page.");
    return;
  }
  const {header, arrays} = message;
  if (header.kind === "base") {
    kept.base = makeBase(header, arrays);
    kept.token = header.token;
  } else if (!kept.base || kept.token !== header.token) {
    // This tab lost the columns (a new version of this code, or a new tab): ask again.
    setTriggerValue("need_base", header.token);
    return;
  }
  const base = kept.base;
  applyChanges(base, header.changes);
  if (header.view_footprints) {
    base.vf = footprintsFrom(arrays, "vf");
    base.vfBox = header.view_footprints;
    base.vfSerial = (base.vfSerial || 0) + 1;
  }
  loadScript(header.deck_url).then(() => {
    // One map per tab, kept across reruns and page visits: coming back to the Map moves its
    // canvas into the new page, with deck.gl's buffers (and footprint tessellation) intact.
    let state = kept.map;
    if (!state) {
      state = createMap(root, header, component);
      kept.map = state;
    } else if (state.root !== root) {
      root.innerHTML = "";
      for (const element of state.elements) root.appendChild(element);
      state.root = root;
      if (kept.lastView && kept.lastView.token === base.token) {
        state.map.setProps({initialViewState: {...kept.lastView.view, pitch: 0, bearing: 0}});
        state.zoom = kept.lastView.view.zoom;
        state.viewState = {...kept.lastView.view, pitch: 0, bearing: 0};
      } else if (state.base !== base) {
        state.map.setProps({initialViewState: {...base.view, pitch: 0, bearing: 0}});
        state.zoom = base.view.zoom;
        state.viewState = {...base.view, pitch: 0, bearing: 0};
      }
    }
    state.setTriggerValue = setTriggerValue;
    state.setStateValue = component.setStateValue;
    if (state.base !== base) { state.dots = null; state.cellsKey = null; }
    state.base = base;
    state.statusLine.hidden = true;
    state.tooltip.hidden = true;
    state.redraw();
    state.map.redraw("data");
  }).catch(error => sentence(root, "The map's code could not be loaded (" + error.message + "). " +
                             "The table below lists the same detections."));
  // Unmounted (another page): the map stays in `kept`, detached, until the Map comes back.
  return () => {};
}
