// The dashboard's page: a view per tab, drawn from the dashboard's JSON
// API; the services and the flow redrawn from each live snapshot (SSE).
// Every text from the shop goes in as text, never as HTML.

const main = document.getElementById("main");
const status = document.getElementById("status");
let live = null;
let contract = null;
let view = "services";
let logTimer = null;

/** An element: h("td", {class: "x"}, "text", child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

async function api(path, options) {
  const answer = await fetch(path, options);
  const body = await answer.json().catch(() => ({ error: answer.statusText }));
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  return body;
}

const ms = (v) => (v === null || v === undefined ? "–" : `${v} ms`);
const us = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${v} µs`);
const when = (usSinceEpoch) => new Date(usSinceEpoch / 1000).toLocaleTimeString();
const palette = ["#0969da", "#8250df", "#1a7f37", "#bc4c00", "#bf3989", "#0550ae", "#6639ba", "#116329"];
const colour = (name) => palette[[...String(name)].reduce((a, c) => a + c.charCodeAt(0), 0) % palette.length];

// ---- services -------------------------------------------------------

function servicesView() {
  if (!live || !live.services) return h("p", {}, "Waiting for the first snapshot…");
  const cards = live.services.map((s) => {
    const errors = Object.entries(s.errors || {});
    return h("div", { class: "card", "data-testid": `service-${s.name}` },
      h("h3", {}, h("span", { class: s.ready ? "dot" : "dot down" }), s.name,
        h("span", { class: "muted" }, s.url)),
      s.ready ? null : h("div", { class: "bad" }, `not ready: ${s.why}`),
      h("div", { class: "figures" },
        h("div", {}, h("b", {}, s.rps), h("span", {}, "calls/s (10 s)")),
        h("div", {}, h("b", {}, ms(s.p50Ms)), h("span", {}, "p50 (1 min)")),
        h("div", {}, h("b", {}, ms(s.p99Ms)), h("span", {}, "p99 (1 min)")),
        h("div", {}, h("b", {}, s.calls), h("span", {}, "calls"))),
      h("div", {}, h("span", { class: "muted" }, "errors: "),
        errors.length ? errors.map(([code, n]) => h("span", { class: "tag" }, `${code} ${n}`)) : "none"),
      h("div", { class: "muted" }, "serves ", s.rpcServices.join(", ")),
      s.admission.length ? h("table", {},
        h("tr", {}, h("th", {}, "admission"), h("th", {}, "limit"), h("th", {}, "in flight"), h("th", {}, "queued"), h("th", {}, "refused")),
        s.admission.map((a) => h("tr", {}, h("td", {}, a.rpcService.split(".").pop()), h("td", {}, a.limit),
          h("td", {}, a.inFlight ?? "–"), h("td", {}, a.queued ?? "–"), h("td", { class: a.refused ? "bad" : "" }, a.refused)))) : null,
      s.peers.length ? h("table", {},
        h("tr", {}, h("th", {}, "as a peer"), h("th", {}, "endpoints"), h("th", {}, "serving"), h("th", {}, "breaker"), h("th", {}, "retries"), h("th", {}, "hedges")),
        s.peers.map((p) => h("tr", {}, h("td", {}, p.downstream), h("td", {}, p.endpoints ?? "–"), h("td", {}, p.serving),
          h("td", { class: p.breakerOpen ? "bad" : "ok" }, p.breakerOpen ? "open" : "closed"), h("td", {}, p.retries), h("td", {}, p.hedges)))) : null);
  });
  const kept = live.kept || {};
  return h("div", {},
    h("div", { class: "cards" }, cards),
    h("p", { class: "muted" }, `Kept in memory: ${kept.traces?.traces ?? 0} traces (${kept.traces?.spans ?? 0} spans, `,
      `${Math.round((kept.traces?.bytes ?? 0) / 1024)} KiB of ${Math.round((kept.traces?.limit_bytes ?? 0) / 1048576)} MiB), `,
      `${kept.logLines ?? 0} log lines.`));
}

// ---- contract and explorer -----------------------------------------

function fieldRows(typeName, depth = 0, seen = new Set()) {
  const message = contract.messages[typeName];
  if (!message || !message.fields || seen.has(typeName) || depth > 3) return [];
  seen.add(typeName);
  return message.fields.flatMap((f) => {
    const row = h("tr", {},
      h("td", { style: `padding-left:${8 + depth * 16}px` }, f.jsonName),
      h("td", {}, `${f.label ? f.label + " " : ""}${f.type}`, f.oneof ? h("span", { class: "tag" }, `oneof ${f.oneof}`) : null,
        contract.messages[f.type]?.enum ? h("div", { class: "muted" }, contract.messages[f.type].enum.join(" | ")) : null),
      h("td", {}, f.rules ? h("code", {}, JSON.stringify(f.rules)) : ""));
    return [row, ...fieldRows(f.type, depth + 1, new Set(seen))];
  });
}

function schema(title, typeName) {
  return h("div", {}, h("h2", {}, `${title}: ${typeName}`),
    h("table", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "type"), h("th", {}, "rules")), fieldRows(typeName)));
}

/** The example with a fresh idempotency key, if the method takes one. */
function freshExample(method) {
  const example = structuredClone(method.example);
  const key = method.policy.idempotencyKey;
  if (key) example[key.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = crypto.randomUUID();
  return JSON.stringify(example, null, 2);
}

function explorerPanel(method) {
  const body = h("textarea", { "data-testid": "explorer-body", spellcheck: "false" }, freshExample(method));
  const caller = h("select", { "data-testid": "explorer-as" },
    h("option", { value: "anonymous" }, "anonymous"),
    h("option", { value: "demo", selected: method.policy.customer }, "the demo customer"),
    h("option", { value: "new" }, "a new customer"));
  const result = h("div", { "data-testid": "explorer-result" });
  const call = async () => {
    result.replaceChildren(h("p", { class: "muted" }, "calling…"));
    let parsed;
    try { parsed = JSON.parse(body.value || "{}"); } catch (e) {
      result.replaceChildren(h("p", { class: "bad" }, `the request is not JSON: ${e.message}`));
      return;
    }
    try {
      const answer = await api("/api/call", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ method: method.path, as: caller.value, body: parsed }),
      });
      result.replaceChildren(
        h("p", {}, h("b", { class: answer.code === "ok" ? "ok" : "bad", "data-testid": "explorer-code" }, answer.code),
          ` HTTP ${answer.httpStatus}, ${answer.elapsedMs} ms `,
          answer.traceId ? h("a", { href: `#trace/${answer.traceId}`, "data-testid": "explorer-trace" }, "its trace") : null, " ",
          answer.orderId ? h("a", { href: `#order/${answer.orderId}`, "data-testid": "explorer-order" }, `order ${answer.orderId}'s saga`) : null),
        h("pre", { "data-testid": "explorer-answer" }, answer.messages.map((m) => JSON.stringify(m, null, 2)).join("\n")),
        h("h2", {}, "The same call"),
        h("pre", {}, answer.lines.curl), h("pre", {}, answer.lines.grpcurl), h("pre", {}, answer.lines.bufCurl));
    } catch (e) {
      result.replaceChildren(h("p", { class: "bad", "data-testid": "explorer-code" }, e.message));
    }
  };
  return h("div", {}, h("h2", {}, "Explorer (Connect JSON)"),
    h("div", { class: "filters" }, "as", caller, h("button", { onclick: call, "data-testid": "explorer-call" }, "Call")),
    body, result);
}

function methodDetail(service, method) {
  const p = method.policy;
  const stats = live?.methods?.[method.path];
  const rest = method.rest ? Object.entries(method.rest).filter(([k]) => ["get", "post", "put", "patch", "delete"].includes(k))
    .map(([verb, path]) => `${verb.toUpperCase()} ${path}`).join(", ") : "none";
  return h("div", { "data-testid": "method-detail" },
    h("h2", {}, method.path, h("span", { class: "tag" }, method.streaming), method.get ? h("span", { class: "tag" }, "GET") : null,
      p.internal ? h("span", { class: "tag internal" }, "internal") : null),
    h("p", { class: "muted" }, `${service.shopService} at ${service.url}`,
      stats ? ` · ${stats.calls} calls, ${stats.rps}/s, p99 ${ms(stats.p99Ms)}` : ""),
    h("table", {},
      h("tr", {}, h("th", {}, "who may call"), h("td", {}, p.caller)),
      h("tr", {}, h("th", {}, "deadline"), h("td", {}, p.deadline ?? "the caller's")),
      h("tr", {}, h("th", {}, "retries"), h("td", {}, p.retries)),
      h("tr", {}, h("th", {}, "hedging"), h("td", {}, p.hedging)),
      h("tr", {}, h("th", {}, "rate class"), h("td", {}, p.rateClass ?? "–")),
      h("tr", {}, h("th", {}, "idempotency key"), h("td", {}, p.idempotencyKey ?? "–")),
      h("tr", {}, h("th", {}, "errors it answers"), h("td", {}, (p.errors || []).join(", ") || "–")),
      h("tr", {}, h("th", {}, "REST"), h("td", {}, rest))),
    schema("Request", method.input), schema("Response", method.output),
    method.streaming.includes("client") ? h("p", { class: "muted" }, "Client streams are not called from here.") : explorerPanel(method));
}

async function contractView(selected) {
  contract = contract || await api("/api/contract");
  const filter = h("input", { placeholder: "filter RPCs", "data-testid": "contract-filter" });
  const list = h("div", { class: "list", "data-testid": "contract-list" });
  const detail = h("div", {});
  const draw = () => {
    const q = filter.value.toLowerCase();
    list.replaceChildren(...contract.services.flatMap((s) => {
      const methods = s.methods.filter((m) => m.path.toLowerCase().includes(q));
      if (!methods.length) return [];
      return [h("div", { class: "svc" }, s.name, s.internal ? h("span", { class: "tag internal" }, "internal") : null),
        ...methods.map((m) => h("a", { href: `#contract/${m.path}`, class: m.path === selected ? "on" : "", "data-testid": "rpc" }, m.name))];
    }));
  };
  filter.addEventListener("input", draw);
  draw();
  const found = contract.services.flatMap((s) => s.methods.map((m) => [s, m])).find(([, m]) => m.path === selected);
  detail.append(found ? methodDetail(...found) : h("p", { class: "muted" },
    `${contract.services.reduce((n, s) => n + s.methods.length, 0)} RPCs in ${contract.services.length} services. Pick one.`));
  return h("div", { class: "split" }, h("div", {}, filter, list), detail);
}

// ---- traces ---------------------------------------------------------

async function tracesView() {
  const service = h("select", {}, h("option", { value: "" }, "every service"),
    ...(live?.services || []).map((s) => h("option", { value: s.name }, s.name)));
  const errors = h("input", { type: "checkbox" });
  const q = h("input", { placeholder: "name holds…" });
  const table = h("table", { "data-testid": "traces" });
  const load = async () => {
    const params = new URLSearchParams({ service: service.value, q: q.value, limit: "200" });
    if (errors.checked) params.set("errors", "true");
    const { traces } = await api(`/api/traces?${params}`);
    table.replaceChildren(h("tr", {}, ...["started", "root", "services", "duration", "spans", "errors"].map((t) => h("th", {}, t))),
      ...traces.map((t) => h("tr", { class: "link", onclick: () => { location.hash = `trace/${t.trace_id}`; } },
        h("td", {}, when(t.start_us)), h("td", {}, t.name), h("td", {}, t.services.join(", ")),
        h("td", {}, us(t.duration_us)), h("td", {}, t.spans), h("td", { class: t.errors ? "bad" : "" }, t.errors || ""))));
  };
  for (const el of [service, errors, q]) el.addEventListener("input", load);
  await load();
  return h("div", {}, h("div", { class: "filters" }, service, h("label", {}, errors, " errors only"), q,
    h("button", { onclick: load }, "Refresh")), table);
}

async function traceView(id) {
  const trace = await api(`/api/traces/${encodeURIComponent(id)}`);
  const spans = trace.spans;
  const start = Math.min(...spans.map((s) => s.start_us));
  const end = Math.max(...spans.map((s) => s.start_us + s.duration_us));
  const total = Math.max(end - start, 1);
  const depth = {};
  const byId = Object.fromEntries(spans.map((s) => [s.span_id, s]));
  const depthOf = (s) => depth[s.span_id] ??= (byId[s.parent_span_id] ? depthOf(byId[s.parent_span_id]) + 1 : 0);
  const detail = h("div", {});
  const rows = spans.map((s) => h("div", { class: "bar-row", "data-testid": "span",
    onclick: () => detail.replaceChildren(h("h2", {}, s.name), h("table", {},
      h("tr", {}, h("th", {}, "service"), h("td", {}, s.service)), h("tr", {}, h("th", {}, "kind"), h("td", {}, s.kind)),
      h("tr", {}, h("th", {}, "error"), h("td", { class: "bad" }, s.error ?? "")),
      ...s.attributes.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))),
      ...s.events.map((e) => h("tr", {}, h("th", {}, `event ${e.name}`), h("td", {}, e.attributes.map(([k, v]) => `${k}=${v}`).join(" ")))))) },
    h("div", { class: "name", style: `padding-left:${depthOf(s) * 14}px`, title: s.name },
      h("span", { class: "tag", style: `background:${colour(s.service)};color:#fff` }, s.service || "?"), " ", s.name),
    h("div", { class: "bar-track" }, h("div", { class: s.error ? "bar error" : "bar",
      style: `left:${((s.start_us - start) / total) * 100}%;width:${(s.duration_us / total) * 100}%;background:${colour(s.service)}` })),
    h("div", { class: s.error ? "bad" : "" }, us(s.duration_us))));
  return h("div", {},
    h("h2", {}, `Trace ${id}`, h("span", { class: "muted" }, ` ${spans.length} spans, ${us(total)}`)),
    trace.orders.length ? h("p", {}, "Orders: ", trace.orders.map((o) => h("a", { href: `#order/${o}` }, o, " "))) : null,
    h("div", { "data-testid": "waterfall" }, rows), detail,
    h("h2", {}, "Its log lines"), logLines(trace.logs),
    h("p", {}, h("a", { href: `#logs?trace=${id}` }, "follow in the log")));
}

// ---- sagas ----------------------------------------------------------

async function ordersView() {
  const { orders } = await api("/api/orders");
  if (!orders.length) return h("p", { class: "muted" }, "No saga kept yet. Place an order (the explorer's OrderService/CreateOrder, or the shop).");
  return h("table", { "data-testid": "orders" }, h("tr", {}, ...["placed", "order", "steps", "ended"].map((t) => h("th", {}, t))),
    orders.map((o) => h("tr", { class: "link", onclick: () => { location.hash = `order/${o.orderId}`; } },
      h("td", {}, when(o.startUs)), h("td", {}, o.orderId), h("td", {}, o.steps),
      h("td", { class: o.ended === "confirmed" ? "ok" : o.ended ? "bad" : "" }, o.ended ?? "under way"))));
}

async function orderView(id) {
  const saga = await api(`/api/orders/${encodeURIComponent(id)}`);
  const kind = (step) => (step.error ? "failed" : /refused|unavailable|not sent/.test(step.outcome || "") ? "refused" :
    /compensate/.test(step.next || "") ? "compensating" : "");
  return h("div", { "data-testid": "saga" },
    h("h2", {}, `Order ${id}: `, h("span", { class: saga.ended === "confirmed" ? "ok" : "bad", "data-testid": "saga-ended" }, saga.ended ?? "under way")),
    saga.placed ? h("p", {}, `Placed by ${saga.placed.name} (${saga.placed.service}) at ${when(saga.placed.startUs)}, `,
      h("a", { href: `#trace/${saga.placed.traceId}` }, "its trace")) : null,
    saga.steps.map((s) => h("div", { class: `step ${kind(s)}`, "data-testid": "saga-step" },
      h("b", { "data-testid": "saga-step-name" }, s.step), ` attempt ${s.attempt} · ${when(s.startUs)} · ${us(s.durationUs)} · `,
      h("a", { href: `#trace/${s.traceId}` }, "trace"),
      h("div", {}, "outcome: ", h("b", {}, s.outcome ?? "–"), " → ", s.next ?? "–"),
      s.calls.length ? h("div", { class: "muted" }, s.calls.map((c) => `${c.name} ${c.code ?? ""} ${us(c.durationUs)}`).join(" · ")) : null)),
    saga.events.length ? h("div", {}, h("h2", {}, "Events handled"),
      saga.events.map((e) => h("div", { class: "muted" }, `${when(e.startUs)} ${e.name} (${e.service}) ${us(e.durationUs)}`))) : null,
    h("h2", {}, "Log lines"), logLines(saga.logs));
}

// ---- flow -----------------------------------------------------------

function flowView() {
  if (!live?.flow) return h("p", {}, "Waiting for the first snapshot…");
  const { nodes, edges } = live.flow;
  const layer = { clients: 0 };
  for (let pass = 0; pass < nodes.length; pass++) {
    for (const e of edges) {
      if (e.from in layer && (e.rps > 0 || e.declared || e.calls > 0 || e.from === "clients")) {
        layer[e.to] = Math.max(layer[e.to] ?? 0, Math.min(layer[e.from] + 1, 4));
      }
    }
  }
  const columns = {};
  for (const n of nodes) (columns[layer[n] ?? 1] ??= []).push(n);
  const at = {};
  const width = 900, height = 420;
  const count = Object.keys(columns).length;
  Object.entries(columns).forEach(([c, names]) => names.forEach((n, i) => {
    at[n] = { x: 90 + (Number(c) * (width - 180)) / Math.max(count - 1, 1), y: ((i + 1) * height) / (names.length + 1) };
  }));
  const ns = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": "flow" });
  const defs = s("defs", {});
  const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" });
  marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#66707a" }));
  defs.append(marker);
  svg.append(defs);
  for (const e of edges) {
    const a = at[e.from], b = at[e.to];
    if (!a || !b || (e.from === "clients" && !e.rps)) continue;
    const quiet = !e.rps;
    svg.append(s("line", { x1: a.x + 50, y1: a.y, x2: b.x - 50, y2: b.y, stroke: e.errors ? "#cf222e" : "#66707a",
      "stroke-width": quiet ? 1 : Math.min(1.5 + Math.log2(1 + e.rps), 8), "stroke-dasharray": quiet ? "4 4" : "", "marker-end": "url(#arrow)" }));
    svg.append(s("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6, "text-anchor": "middle", fill: "#1d232a" },
      `${Number(e.rps.toFixed(1))}/s${e.errors ? `, ${e.errors} errors` : ""}`));
  }
  const ready = Object.fromEntries((live.services || []).map((x) => [x.name, x]));
  for (const n of nodes) {
    const p = at[n];
    const up = n === "clients" || ready[n]?.ready;
    svg.append(s("rect", { x: p.x - 50, y: p.y - 18, width: 100, height: 36, rx: 6, fill: "#fff", stroke: up ? colour(n) : "#cf222e", "stroke-width": 2 }));
    svg.append(s("text", { x: p.x, y: p.y + 4, "text-anchor": "middle" }, n));
  }
  return h("div", {}, h("p", { class: "muted" },
    "Calls between services as their client spans count them (last 10 s); dashed: declared by the contract's caller rules, quiet now."), svg);
}

// ---- logs -----------------------------------------------------------

function logLines(lines) {
  return h("div", { class: "log", "data-testid": "log" }, lines.map((l) => h("div", { class: `lvl-${l.level}` },
    `${when(l.at_us)} ${l.level.padEnd(5)} ${l.service || "-"} ${l.target}: ${l.message} `,
    l.fields.map(([k, v]) => `${k}=${v}`).join(" "),
    l.trace_id ? h("a", { href: `#trace/${l.trace_id}` }, " trace") : null)));
}

function logsView(params) {
  const service = h("select", {}, h("option", { value: "" }, "every service"),
    ...(live?.services || []).map((s) => h("option", { value: s.name }, s.name)));
  const level = h("select", {}, ...["", "error", "warn", "info", "debug"].map((l) => h("option", { value: l }, l || "every level")));
  const trace = h("input", { placeholder: "trace id", value: params.get("trace") || "", size: 34 });
  const q = h("input", { placeholder: "holds…" });
  const box = h("div", {});
  const load = async () => {
    const query = new URLSearchParams({ service: service.value, level: level.value, trace: trace.value.trim(), q: q.value, limit: "300" });
    const { lines } = await api(`/api/logs?${query}`);
    const follow = box.firstChild ? box.firstChild.scrollTop + box.firstChild.clientHeight >= box.firstChild.scrollHeight - 4 : true;
    box.replaceChildren(logLines(lines));
    if (follow) box.firstChild.scrollTop = box.firstChild.scrollHeight;
  };
  for (const el of [service, level, trace, q]) el.addEventListener("input", load);
  load();
  logTimer = setInterval(() => load().catch(() => {}), 1500);
  return h("div", {}, h("div", { class: "filters" }, service, level, trace, q), box);
}

// ---- routing and live updates ---------------------------------------

async function show() {
  clearInterval(logTimer);
  const [name, ...rest] = location.hash.replace(/^#/, "").split("/");
  const [path, query] = (rest.join("/") || "").split("?");
  const [viewName, viewQuery] = (name || "services").split("?");
  view = viewName;
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.dataset.view === view || (view === "trace" && a.dataset.view === "traces") || (view === "order" && a.dataset.view === "orders");
    a.classList.toggle("on", on);
  }
  try {
    const drawn = {
      services: () => servicesView(),
      contract: () => contractView(decodeURIComponent(path || "")),
      traces: () => tracesView(),
      trace: () => traceView(path),
      orders: () => ordersView(),
      order: () => orderView(decodeURIComponent(path)),
      flow: () => flowView(),
      logs: () => logsView(new URLSearchParams(viewQuery || query || "")),
    }[view];
    main.replaceChildren(await (drawn ? drawn() : servicesView()));
  } catch (e) {
    main.replaceChildren(h("p", { class: "bad" }, e.message));
  }
}

const events = new EventSource("/api/live");
events.addEventListener("live", (event) => {
  live = JSON.parse(event.data);
  const up = (live.services || []).filter((s) => s.ready).length;
  status.textContent = `${up}/${(live.services || []).length} services ready · updated ${new Date(live.at).toLocaleTimeString()}`;
  if (view === "services" || view === "flow") show();
});
events.addEventListener("error", () => { status.textContent = "the shop is not answering (stopped?)"; });
window.addEventListener("hashchange", show);
show();
