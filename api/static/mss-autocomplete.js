/*
 * <mss-address-input>: MSSanté address autocomplete, a WAI-ARIA 1.2 combobox (list autocomplete).
 *
 * Embed:
 *   <script src="https://your-mss-host/widget/mss-autocomplete.js" defer></script>
 *   <mss-address-input endpoint="https://your-mss-host" name="to" limit="8" type="PER"
 *                      placeholder="Nom, établissement, ville…"></mss-address-input>
 *
 * Attributes: endpoint (base URL of mss; default: the script's origin), key (a publishable key, mss_pk_…,
 * made with `mss client add NAME --publishable --origin https://this-page-origin`: needed when the service
 * asks for a key for its directory; never put a secret mss_sk_ key in a page), name (form field name: a hidden
 * input carrying the chosen address is added to the enclosing form), limit (1-20, default 8), type, dept,
 * profession (filters passed to the API), placeholder, debounce (ms, default 150), label (accessible name).
 * Property `value`: the chosen address. Event `mss-select` (bubbles) with `detail` = the suggestion.
 */
(() => {
  "use strict";
  const scriptOrigin = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (_) {
      return window.location.origin;
    }
  })();
  let instances = 0;

  const STYLE = `
    :host { display: block; position: relative; font: inherit; max-width: 40rem; }
    input { box-sizing: border-box; width: 100%; padding: .55rem .7rem; font: inherit;
            border: 1px solid #8a94a6; border-radius: 6px; }
    input:focus { outline: 2px solid #1f5fbf; outline-offset: 1px; }
    ul { list-style: none; margin: 2px 0 0; padding: 0; position: absolute; z-index: 1000; left: 0; right: 0;
         background: #fff; border: 1px solid #8a94a6; border-radius: 6px; max-height: 22rem; overflow-y: auto;
         box-shadow: 0 6px 18px rgba(0,0,0,.12); }
    ul[hidden] { display: none; }
    li { padding: .45rem .7rem; cursor: pointer; border-bottom: 1px solid #eef0f4; }
    li:last-child { border-bottom: none; }
    li[aria-selected="true"], li:hover { background: #e8f0fd; }
    .label { font-weight: 600; }
    .label mark { background: #ffe27a; color: inherit; padding: 0; }
    .meta { color: #4a5568; font-size: .88em; }
    .addr { color: #1f5fbf; font-size: .88em; word-break: break-all; }
    .type { display: inline-block; font-size: .72em; font-weight: 700; border-radius: 3px; padding: 0 .3em;
            margin-right: .4em; vertical-align: middle; color: #fff; background: #5a6b85; }
    .type.PER { background: #2f7d4f; } .type.ORG { background: #8a4fbf; } .type.APP { background: #b86e00; }
    .status { padding: .45rem .7rem; color: #4a5568; font-style: italic; cursor: default; }
    .status.error { color: #b00020; font-style: normal; }
    .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  `;

  class MssAddressInput extends HTMLElement {
    constructor() {
      super();
      const id = `mss-ac-${++instances}`;
      this._suggestions = [];
      this._active = -1;
      this._timer = null;
      this._request = null;
      this._value = "";
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `
        <style>${STYLE}</style>
        <input id="${id}-input" type="text" role="combobox" autocomplete="off" spellcheck="false"
               aria-autocomplete="list" aria-expanded="false" aria-controls="${id}-list">
        <ul id="${id}-list" role="listbox" hidden></ul>
        <div class="sr-only" role="status" aria-live="polite"></div>`;
      this._input = root.querySelector("input");
      this._list = root.querySelector("ul");
      this._live = root.querySelector("[role=status]");
      this._id = id;
      this._input.addEventListener("input", () => this._onInput());
      this._input.addEventListener("keydown", (e) => this._onKey(e));
      this._input.addEventListener("blur", () => setTimeout(() => this._close(), 120));
      // mousedown, not click: the input keeps focus, so blur does not close the list first
      this._list.addEventListener("mousedown", (e) => {
        const li = e.target.closest("li[data-index]");
        if (!li) return;
        e.preventDefault();
        this._choose(Number(li.dataset.index));
      });
    }

    connectedCallback() {
      this._input.placeholder = this.getAttribute("placeholder") || "Nom, établissement, ville, profession…";
      this._input.setAttribute("aria-label", this.getAttribute("label") || "Adresse MSSanté du destinataire");
      const name = this.getAttribute("name");
      if (name && !this._hidden) {
        this._hidden = document.createElement("input");
        this._hidden.type = "hidden";
        this._hidden.name = name;
        this.appendChild(this._hidden);
      }
    }

    get value() { return this._value; }
    set value(v) {
      this._value = String(v || "");
      this._input.value = this._value;
      if (this._hidden) this._hidden.value = this._value;
    }

    get inputElement() { return this._input; }

    _onInput() {
      this._value = "";
      if (this._hidden) this._hidden.value = "";
      clearTimeout(this._timer);
      const q = this._input.value.trim();
      if (!q) { this._close(); return; }
      const wait = Number(this.getAttribute("debounce") || 150);
      this._timer = setTimeout(() => this._fetch(q), wait);
    }

    async _fetch(q) {
      if (this._request) this._request.abort();
      const controller = new AbortController();
      this._request = controller;
      const base = (this.getAttribute("endpoint") || scriptOrigin).replace(/\/+$/, "");
      const url = new URL(`${base}/v1/directory/autocomplete`);
      url.searchParams.set("q", q);
      url.searchParams.set("limit", String(Math.min(20, Math.max(1, Number(this.getAttribute("limit") || 8)))));
      for (const f of ["type", "dept", "profession"]) {
        const v = this.getAttribute(f);
        if (v) url.searchParams.set(f, v);
      }
      try {
        const headers = { Accept: "application/json" };
        const key = this.getAttribute("key");
        if (key) headers["X-Api-Key"] = key;
        const response = await fetch(url, { signal: controller.signal, headers });
        if (!response.ok) {
          let detail = `erreur ${response.status}`;
          try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
          throw new Error(detail);
        }
        const body = await response.json();
        if (controller.signal.aborted || this._input.value.trim() !== q) return; // a newer keystroke won
        this._list.dataset.query = q; // which query the list answers (pages and tests can wait for it)
        this._render(body.suggestions || []);
      } catch (err) {
        if (err.name === "AbortError") return;
        this._renderStatus(`Annuaire indisponible (${err.message}).`, true);
      } finally {
        if (this._request === controller) this._request = null;
      }
    }

    _render(suggestions) {
      this._suggestions = suggestions;
      this._active = -1;
      this._input.removeAttribute("aria-activedescendant");
      this._list.replaceChildren();
      if (suggestions.length === 0) {
        this._renderStatus("Aucune boîte aux lettres ne correspond.", false);
        return;
      }
      suggestions.forEach((s, i) => {
        const li = document.createElement("li");
        li.id = `${this._id}-opt-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.index = String(i);
        const line1 = document.createElement("div");
        const badge = document.createElement("span");
        badge.className = `type ${s.bal_type}`;
        badge.textContent = s.bal_type;
        const label = document.createElement("span");
        label.className = "label";
        appendHighlighted(label, s.label, s.highlights || []);
        line1.append(badge, label);
        const meta = document.createElement("div");
        meta.className = "meta";
        meta.textContent = [s.speciality || s.profession, s.organisation && s.bal_type === "PER" ? s.organisation : null,
          s.city ? (s.department ? `${s.city} (${s.department})` : s.city) : null].filter(Boolean).join(" · ");
        const addr = document.createElement("div");
        addr.className = "addr";
        addr.textContent = s.address;
        li.append(line1, meta, addr);
        this._list.appendChild(li);
      });
      this._open();
      this._live.textContent = `${suggestions.length} suggestion${suggestions.length > 1 ? "s" : ""}.`;
    }

    _renderStatus(text, isError) {
      this._suggestions = [];
      this._active = -1;
      this._list.replaceChildren();
      const li = document.createElement("li");
      li.className = isError ? "status error" : "status";
      li.setAttribute("aria-disabled", "true");
      li.textContent = text;
      this._list.appendChild(li);
      this._open();
      this._live.textContent = text;
    }

    _open() {
      this._list.hidden = false;
      this._input.setAttribute("aria-expanded", "true");
    }

    _close() {
      this._list.hidden = true;
      this._input.setAttribute("aria-expanded", "false");
      this._input.removeAttribute("aria-activedescendant");
      this._active = -1;
    }

    _move(delta) {
      const n = this._suggestions.length;
      if (n === 0) return;
      if (this._list.hidden) this._open();
      const next = this._active < 0 ? (delta > 0 ? 0 : n - 1) : (this._active + delta + n) % n;
      this._setActive(next);
    }

    _setActive(i) {
      const items = this._list.querySelectorAll("li[role=option]");
      items.forEach((li, j) => li.setAttribute("aria-selected", j === i ? "true" : "false"));
      this._active = i;
      const li = items[i];
      if (li) {
        this._input.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      }
    }

    _choose(i) {
      const s = this._suggestions[i];
      if (!s) return;
      this.value = s.address;
      this._close();
      this._live.textContent = `${s.label}, ${s.address} sélectionnée.`;
      this.dispatchEvent(new CustomEvent("mss-select", { detail: s, bubbles: true, composed: true }));
    }

    _onKey(e) {
      switch (e.key) {
        case "ArrowDown":
          e.preventDefault();
          if (this._list.hidden && this._input.value.trim()) this._fetch(this._input.value.trim());
          else this._move(1);
          break;
        case "ArrowUp":
          e.preventDefault();
          this._move(-1);
          break;
        case "Enter":
          if (!this._list.hidden && this._active >= 0) {
            e.preventDefault();
            this._choose(this._active);
          }
          break;
        case "Escape":
          if (!this._list.hidden) this._close();
          else { this.value = ""; }
          e.preventDefault();
          break;
        case "Tab":
          this._close();
          break;
        default:
      }
    }
  }

  /** Appends `text` to `el`, wrapping the [start, end) code-point ranges in <mark>. */
  function appendHighlighted(el, text, ranges) {
    const chars = Array.from(text);
    let at = 0;
    for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
      if (start < at || end <= start) continue;
      if (start > at) el.append(chars.slice(at, start).join(""));
      const mark = document.createElement("mark");
      mark.textContent = chars.slice(start, end).join("");
      el.append(mark);
      at = end;
    }
    if (at < chars.length) el.append(chars.slice(at).join(""));
  }

  if (!customElements.get("mss-address-input")) customElements.define("mss-address-input", MssAddressInput);
})();
