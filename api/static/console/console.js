// mss ops console: plain script, no build step, nothing loaded from elsewhere. Reads the service's own routes
// with the client key kept in this tab's sessionStorage (never in a URL or a cookie), polls the view shown,
// and builds every row with textContent: subjects, names and server replies come from outside.
"use strict";

(() => {
  const KEY = "mss-console-key";
  const EVERY_MS = Number(new URLSearchParams(location.search).get("every")) || 5000;
  const $ = (sel) => document.querySelector(sel);
  let view = "outbox";
  let timer = null;
  let busy = false;

  // one element, its attributes and its children (strings become text nodes)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function fill(table, rows, empty) {
    const body = $(table).tBodies[0];
    const cols = $(table).tHead.rows[0].cells.length;
    body.replaceChildren(...(rows.length ? rows
      : [h("tr", { class: "empty" }, h("td", { colspan: cols }, empty))]));
  }

  const time = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
  const clock = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "—");
  function age(ms, now) {
    if (!ms) return "—";
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${Math.round(s / 3600)} h`;
  }
  const badge = (text, kind) => h("span", { class: `badge ${kind || text}` }, text);

  function status(text, error) {
    const s = $("#status");
    s.textContent = text;
    s.classList.toggle("error", !!error);
  }

  // what an action did: stays until the next action (the polling status line changes every few seconds)
  function notice(text, error) {
    const n = $("#notice");
    n.textContent = text;
    n.classList.toggle("error", !!error);
  }

  class Refused extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function call(path, options = {}) {
    const key = sessionStorage.getItem(KEY);
    const headers = { "X-Api-Key": key || "", ...(options.headers || {}) };
    const r = await fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
    if (!r.ok) {
      let detail = `${r.status} ${r.statusText}`;
      try { detail = (await r.json()).detail || detail; } catch (_) { /* not problem+json */ }
      throw new Refused(r.status, detail);
    }
    return r;
  }
  const json = async (path, options) => (await call(path, options)).json();
  const post = (path, body) => json(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });

  // ---- outbox ----

  function rateChart(buckets, now, bucketMs) {
    const n = 60;
    const start = Math.floor((now - n * bucketMs) / bucketMs) * bucketMs;
    const acc = new Array(n).fill(0);
    const fail = new Array(n).fill(0);
    for (const b of buckets) {
      const i = Math.floor((b.start_ms - start) / bucketMs) - 1;
      if (i >= 0 && i < n) { acc[i] += b.accepted; fail[i] += b.failed; }
    }
    const max = Math.max(1, ...acc.map((a, i) => a + fail[i]));
    const total = acc.reduce((a, b) => a + b, 0);
    const failed = fail.reduce((a, b) => a + b, 0);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "rate");
    svg.setAttribute("width", "120");
    svg.setAttribute("height", "24");
    svg.setAttribute("role", "img");
    const label = `last hour: ${total} accepted, ${failed} failed`;
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(ns, "title");
    title.textContent = label;
    svg.append(title);
    for (let i = 0; i < n; i++) {
      const ha = Math.round((acc[i] / max) * 24);
      const hf = Math.round((fail[i] / max) * 24);
      for (const [cls, height, y] of [["a", ha, 24 - ha], ["f", hf, 24 - ha - hf]]) {
        if (!height) continue;
        const r = document.createElementNS(ns, "rect");
        r.setAttribute("class", cls);
        r.setAttribute("x", String(i * 2));
        r.setAttribute("y", String(y));
        r.setAttribute("width", "2");
        r.setAttribute("height", String(height));
        svg.append(r);
      }
    }
    return h("span", {}, svg, h("span", { class: "sr" }, label));
  }

  async function act(button, path, body, done) {
    button.disabled = true;
    try {
      const r = await post(path, body);
      notice(done(r));
      await refresh();
    } catch (e) {
      notice(e.status === 403 ? `Refused: ${e.message}` : `Failed: ${e.message}`, true);
      button.disabled = false;
    }
  }

  async function outbox() {
    const o = await json("/v1/outbox");
    const now = o.now_ms;
    $("#alerts").replaceChildren(...o.senders.filter((s) => s.paused).map((s) => h("div",
      { class: "alert", role: "alert" },
      h("strong", {}, `${s.sender} is paused`), ` since ${time(s.paused.since_ms)}: ${s.paused.reason}. `,
      h("br"), h("strong", {}, "What to do: "), s.paused.action)));
    fill("#senders", o.senders.map((s) => {
      const c = s.counts;
      return h("tr", { class: s.paused ? "paused" : null, "data-sender": s.sender },
        h("th", { scope: "row" }, s.sender, s.name ? ` (${s.name}) ` : " ",
          s.paused ? badge("paused") : null),
        ...["queued", "sending", "sent", "deferred", "failed", "delivered", "read", "cancelled"].map((k) =>
          h("td", { class: "n", "data-state": k }, c[k])),
        h("td", { class: "n" }, age(s.oldest_pending_ms, now)),
        h("td", {}, rateChart(o.rate.filter((r) => r.sender === s.sender), now, o.rate_bucket_ms)));
    }), "No sending mailbox is configured and nothing was sent.");
    fill("#troubles", o.troubles.map((t) => h("tr", { "data-message": t.message, "data-address": t.address },
      h("th", { scope: "row" }, t.address, h("br"), h("small", {}, `from ${t.sender}`)),
      h("td", {}, badge(t.state)),
      h("td", { class: "reply" }, t.reason || ""),
      h("td", {}, t.retry_at_ms ? time(t.retry_at_ms) : "none (given up)"),
      h("td", { class: "n" }, t.attempts),
      h("td", {}, `#${t.message} ${t.label}`, t.batch ? h("br") : null, t.batch ? h("small", {}, t.batch) : null),
      h("td", {}, h("button", {
        type: "button", class: "act", "aria-label": `Retry ${t.address} now`,
        onclick: (e) => act(e.target, `/v1/messages/${t.message}/retry`, { recipients: [t.address] },
          () => `${t.address}: back in the queue`),
      }, "Retry now")))), "No failed or deferred recipient.");
    // a hospital's PFI: the ZAMs the DPI has not taken (down, AR) or refused (AE)
    const acks = o.senders.flatMap((s) => s.business_acks);
    $("#dpi").hidden = !o.senders.some((s) => s.dpi) && acks.length === 0;
    const ackNames = { "ZAM^Z02": "delivery (ZAM^Z02)", "ZAM^Z03": "reading (ZAM^Z03)" };
    fill("#business-acks", acks.map((a) => h("tr", { "data-sender": a.sender, "data-type": a.type, "data-state": a.state },
      h("th", { scope: "row" }, a.sender), h("td", {}, ackNames[a.type] || a.type),
      h("td", {}, badge(a.state, a.state === "refused" ? "failed" : "deferred")),
      h("td", { class: "n" }, a.count),
      h("td", { class: "n" }, age(a.oldest_ms, now)),
      h("td", { class: "reply" }, a.latest_error || ""))), "Every business ack was taken by the DPI.");
    fill("#batches", o.batches.map((b) => {
      const c = b.counts;
      const total = Object.values(c).reduce((a, x) => a + x, 0);
      const done = total - c.queued - c.sending - c.deferred;
      const waiting = c.queued + c.deferred;
      return h("tr", { "data-batch": b.id },
        h("th", { scope: "row" }, b.id, h("br"), h("small", {}, time(b.created_ms))),
        h("td", {}, b.sender || "—"), h("td", {}, b.owner || "command line"),
        h("td", {}, h("progress", { max: total || 1, value: done, "aria-label": `${b.id}: ${done} of ${total} done` }),
          ` ${done}/${total}`),
        h("td", { class: "n" }, waiting), h("td", { class: "n", "data-state": "failed" }, c.failed),
        h("td", { class: "n", "data-state": "cancelled" }, c.cancelled),
        h("td", {}, waiting ? h("button", {
          type: "button", class: "danger", "aria-label": `Cancel what waits of batch ${b.id}`,
          onclick: (e) => {
            if (!confirm(`Cancel the ${waiting} recipient(s) still waiting in batch ${b.id}? They will not be sent.`)) return;
            act(e.target, `/v1/batches/${encodeURIComponent(b.id)}/cancel`, null,
              (r) => `${b.id}: ${r.recipients} recipient(s) cancelled`);
          },
        }, "Cancel queued") : ""));
    }), "No batch yet.");
    fill("#latest", o.latest.map((l) => h("tr", {},
      h("td", {}, clock(l.updated_ms)), h("th", { scope: "row" }, l.address), h("td", {}, badge(l.state)),
      h("td", {}, l.sender), h("td", {}, `#${l.message} ${l.label}`))), "Nothing yet.");
  }

  // ---- inbox ----

  async function download(path, name) {
    try {
      const blob = await (await call(path)).blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      notice(e.status === 403 ? `Refused: ${e.message}` : `Failed: ${e.message}`, true);
    }
  }

  function opens(m) {
    const docs = [];
    for (let n = 0; n < (m.documents || 0); n++) {
      docs.push(" ", h("button", { type: "button", "aria-label": `Document ${n + 1} of message ${m.id}`,
        onclick: () => download(`/v1/inbox/${m.id}/documents/${n}`, `message-${m.id}-document-${n + 1}`) },
      `Doc ${n + 1}`));
    }
    return h("td", {}, h("button", { type: "button", "aria-label": `Raw message ${m.id}`,
      onclick: () => download(`/v1/inbox/${m.id}/raw`, `message-${m.id}.eml`) }, "Raw"), ...docs);
  }

  function from(m) {
    const who = m.from_name ? `${m.from_name} <${m.from || "?"}>` : (m.from || "unknown");
    return h("td", {}, m.patient ? badge("Patient", "patient") : null, m.patient ? " " : null, who,
      m.patient && m.patient.ins ? h("br") : null, m.patient && m.patient.ins ? h("small", {}, `INS ${m.patient.ins}`) : null);
  }

  let marking = null;
  function markError(m, button) {
    marking = { m, button };
    $("#error-what").textContent = `Message #${m.id} “${m.subject || ""}” from ${m.from || "unknown"}: the sender gets the error notice (MDN).`;
    $("#error-dialog").showModal();
    $("#error-code").focus();
  }

  async function inbox() {
    const [waiting, errors] = await Promise.all([json("/v1/inbox?status=new"), json("/v1/inbox?status=error")]);
    fill("#inbox-new", waiting.items.slice().reverse().map((m) => h("tr", { "data-id": m.id },
      h("td", {}, time(Date.parse(m.received_at))), h("td", {}, m.mailbox), from(m),
      h("th", { scope: "row" }, m.subject || "(no subject)"), h("td", { class: "n" }, m.documents),
      h("td", {}, (m.problems || []).join("; ")), opens(m),
      h("td", {}, h("button", { type: "button", class: "act", "aria-label": `Mark message ${m.id} integrated`,
        onclick: (e) => act(e.target, `/v1/inbox/${m.id}/ack`, { status: "integrated" },
          () => `Message #${m.id} marked integrated`) }, "Integrated"), " ",
      h("button", { type: "button", class: "danger", "aria-label": `Mark message ${m.id} in error`,
        onclick: (e) => markError(m, e.target) }, "In error")))), "Nothing waits for integration.");
    fill("#inbox-error", errors.items.slice().reverse().map((m) => h("tr", { "data-id": m.id },
      h("td", {}, time(Date.parse(m.received_at))), h("td", {}, m.mailbox), from(m),
      h("th", { scope: "row" }, m.subject || "(no subject)"),
      h("td", {}, badge("error"), ` ${m.outcome && m.outcome.code} ${(m.outcome && m.outcome.label) || ""}`),
      opens(m))), "No message in error.");
  }

  // ---- sources ----

  async function sources() {
    const s = await json("/v1/sources");
    $("#index-size").textContent = s.entries === null ? "The index is loading."
      : `${s.entries.toLocaleString()} entries in the index (${Math.round(s.size_bytes / 1048576)} MiB).`;
    // the service's own runs (fhir_sync_every, ldap_sync_every): last outcome, last failure, next run
    const key = { fhir: "fhir_sync_every", ldap: "ldap_sync_every" };
    const span = (s) => [[86400, "d"], [3600, "h"], [60, "min"]].map(([n, u]) => (s % n === 0 ? `${s / n} ${u}` : ""))
      .find(Boolean) || `${s} s`;
    const runs = (x) => {
      const r = x.schedule;
      if (!r) return h("small", {}, key[x.source] ? `not run by the service (${key[x.source]})` : "by mss import");
      const a = r.last_attempt;
      const last = !a ? h("span", { "data-outcome": "none" }, "no run yet")
        : h("span", { "data-outcome": a.outcome },
          badge(a.outcome, a.outcome === "incomplete" ? "deferred" : a.outcome), ` ${time(Date.parse(a.finished))}`,
          a.outcome === "failed" ? `: ${a.error_kind}: ${a.error}` : a.summary ? `: ${a.summary}` : "");
      const failed = r.last_error && a && a.outcome !== "failed"
        ? [h("br"), h("small", {}, `last failure ${time(Date.parse(r.last_error.finished))}: ${r.last_error.error}`)] : [];
      const next = r.running ? "running now" : `next run ${time(Date.parse(r.next_run))}`;
      return h("span", {}, last, ...failed, h("br"),
        h("small", { "data-next": r.next_run || "" }, `${next} (every ${span(r.every_seconds)}; ${r.failed_runs} of ${r.runs} runs failed)`));
    };
    fill("#sources", s.sources.map((x) => h("tr", { "data-source": x.source },
      h("th", { scope: "row" }, x.source),
      h("td", {}, x.last && x.last.last_sync ? new Date(x.last.last_sync).toLocaleString() : "never on this index"),
      h("td", {}, x.last ? Object.entries(x.last).filter(([k]) => k !== "last_sync")
        .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ") : ""),
      h("td", {}, runs(x)))), "");
    // this service's last use of each endpoint: when, and whether it worked or what stopped it
    const last = (e, which) => {
      const c = e.last_connections.find((x) => x.endpoint === which);
      if (!c) return h("small", {}, `${which === "imap" ? "IMAP" : "submission"}: not used since the service started`);
      return h("span", { "data-endpoint": which }, c.ok ? badge("ok") : badge("failed"),
        ` ${which === "imap" ? "IMAP" : "submission"} ${time(c.at_ms)}`,
        c.ok ? "" : `: ${c.error}`, c.detail ? h("br") : null, c.detail ? h("small", {}, c.detail) : null);
    };
    fill("#endpoints", s.endpoints.map((e) => h("tr", { "data-sender": e.sender },
      h("th", { scope: "row" }, `${e.sender} (${e.name})`), h("td", {}, e.submission || "DNS SRV"),
      h("td", {}, e.imap || "from the submission host"), h("td", {}, e.receives ? "yes" : "no"),
      h("td", {}, e.working ? badge("ok") : badge("paused"), e.reason ? ` ${e.reason}` : ""),
      h("td", {}, last(e, "submission"), h("br"), last(e, "imap")))),
    "No sending mailbox is configured.");
  }

  // ---- the page ----

  const views = { outbox, inbox, sources };

  async function refresh() {
    if (busy || !sessionStorage.getItem(KEY)) return;
    busy = true;
    try {
      await views[view]();
      status(`Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (e.status === 401) {
        status("This key is not valid (unknown, wrong or revoked): sign in again.", true);
        signOut(false);
      } else if (e.status === 403) {
        status(`Refused: ${e.message}.`, true);
      } else {
        status(`Cannot read the service: ${e.message}`, true);
      }
    } finally {
      busy = false;
    }
  }

  function show(name) {
    view = name;
    for (const b of document.querySelectorAll("nav button")) {
      if (b.dataset.view === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
    }
    const signed = !!sessionStorage.getItem(KEY);
    for (const v of Object.keys(views)) $(`#view-${v}`).hidden = !signed || v !== name;
    $("#intro").hidden = signed;
    refresh();
  }

  function signedIn() {
    const key = sessionStorage.getItem(KEY);
    $("#signin").hidden = !!key;
    $("#signed").hidden = !key;
    // the key's id (its public part) only
    $("#who").textContent = key ? `key ${key.split("_").slice(0, 3).join("_")}…` : "";
    show(view);
    clearInterval(timer);
    if (key) timer = setInterval(() => { if (!document.hidden) refresh(); }, EVERY_MS);
  }

  function signOut(clearStatus = true) {
    sessionStorage.removeItem(KEY);
    if (clearStatus) status("");
    notice("");
    signedIn();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#signin").addEventListener("submit", (e) => {
      e.preventDefault();
      const key = $("#key").value.trim();
      $("#key").value = "";
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      status("Signing in…");
      signedIn();
      $("#main").focus();
    });
    $("#signout").addEventListener("click", () => signOut());
    for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.view));
    $("#error-dialog").addEventListener("close", () => {
      const d = $("#error-dialog");
      if (d.returnValue === "ok" && marking) {
        const { m, button } = marking;
        act(button, `/v1/inbox/${m.id}/ack`,
          { status: "error", code: Number($("#error-code").value), label: $("#error-label").value.trim() },
          (r) => `Message #${m.id} marked in error${r.answer ? `; ${r.answer.kind} queued as outbox #${r.answer.message}` : ""}`);
      }
      marking = null;
    });
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
    signedIn();
  });
})();
