// A single-page app on another origin than the API, calling it the way a real frontend would:
// fetch() with a bearer key, conditional requests, an idempotent POST, a streamed export.
//
// erpSpa.run(config) runs STEPS in order. A step is [name, async (call, state, config) => result]:
// `call` is fetch() against the API with the key; `state` carries values between steps. Each result
// is written into the DOM (<li data-step="name"> holding its JSON), #done says "done" at the end, and
// run() returns all results by name. A step that throws records {error: "..."} and the rest go on.
"use strict";

function apiCaller(config) {
  return function call(path, init = {}) {
    const headers = new Headers(init.headers || {});
    headers.set("Authorization", `Bearer ${config.key}`);
    return fetch(config.api + path, { ...init, headers });
  };
}

function json(body) {
  return { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
}

const STEPS = [
  ["list_charges", async (call, state) => {
    const response = await call("/api/v1/charges?limit=1&sort=produced_at");
    const page = await response.json();
    state.chargeId = page.items[0].id;
    return {
      status: response.status,
      ids: page.items.map((charge) => charge.id),
      link: response.headers.get("Link"),
      rateLimitLimit: response.headers.get("RateLimit-Limit"),
      rateLimitRemaining: response.headers.get("RateLimit-Remaining"),
      requestId: response.headers.get("X-Request-ID"),
    };
  }],
  ["get_charge", async (call, state) => {
    const response = await call(`/api/v1/charges/${state.chargeId}`);
    state.etag = response.headers.get("ETag");
    return { status: response.status, etag: state.etag };
  }],
  // Live events, in two parts around patch_charge: an EventSource (which cannot send Authorization)
  // opened with a single-use ticket, keeping a promise of the patched charge's charge.updated.
  ["open_events", async (call, state, config) => {
    const response = await call("/api/v1/events/tickets", { method: "POST" });
    const issued = await response.json();
    const query = `types=charge.updated&ticket=${encodeURIComponent(issued.ticket)}`;
    const source = new EventSource(`${config.api}/api/v1/events?${query}`);
    state.chargeEvent = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no charge.updated within 15 s")), 15000);
      source.addEventListener("charge.updated", (message) => {
        const event = JSON.parse(message.data);
        if (event.charge_id !== state.chargeId) return;
        clearTimeout(timer);
        source.close();
        resolve({ lastEventId: message.lastEventId, event });
      });
    });
    await new Promise((resolve, reject) => {
      source.onopen = resolve;
      setTimeout(() => reject(new Error("the EventSource did not open within 10 s")), 10000);
    });
    return { status: response.status, expiresIn: issued.expires_in, readyState: source.readyState };
  }],
  ["patch_charge", async (call, state) => {
    const response = await call(`/api/v1/charges/${state.chargeId}`, {
      method: "PATCH",
      ...json({ line: "Linie Süd" }),
      headers: { "Content-Type": "application/json", "If-Match": state.etag },
    });
    const charge = await response.json();
    state.oldEtag = state.etag;
    state.etag = response.headers.get("ETag");
    return { status: response.status, etag: state.etag, line: charge.line, version: charge.version };
  }],
  ["charge_event", async (call, state) => {
    const { lastEventId, event } = await state.chargeEvent;
    return {
      type: event.type,
      idMatches: lastEventId === String(event.id),
      chargeId: event.charge_id,
      version: event.data.charge.version,
      line: event.data.charge.line,
    };
  }],
  ["stale_patch", async (call, state) => {
    const response = await call(`/api/v1/charges/${state.chargeId}`, {
      method: "PATCH",
      body: JSON.stringify({ line: "L9" }),
      headers: { "Content-Type": "application/json", "If-Match": state.oldEtag },
    });
    return { status: response.status, contentType: response.headers.get("Content-Type") };
  }],
  ["put_spec", async (call) => {
    const response = await call("/api/v1/quality/specs/PUMP-A/diameter_mm", {
      method: "PUT",
      ...json({ unit: "mm", lsl: 79.5, usl: 80.5, target: 80.0 }),
    });
    return { status: response.status };
  }],
  ["idempotent_analysis", async (call, state) => {
    const post = () => call(`/api/v1/charges/${state.chargeId}/analyses`, {
      method: "POST",
      body: JSON.stringify({ rules: "nelson" }),
      headers: { "Content-Type": "application/json", "Idempotency-Key": "browser-test-0001" },
    });
    const first = await post();
    const again = await post();
    return {
      statuses: [first.status, again.status],
      location: first.headers.get("Location"),
      replayed: again.headers.get("Idempotent-Replayed"),
    };
  }],
  ["export_csv", async (call) => {
    const response = await call("/api/v1/exports/charges.csv?bom=false");
    const text = await response.text();
    return {
      status: response.status,
      disposition: response.headers.get("Content-Disposition"),
      header: text.split("\r\n")[0],
      rows: text.split("\r\n").length - 2,
    };
  }],
];

window.erpSpa = {
  steps: STEPS,
  async run(config) {
    const call = apiCaller(config);
    const state = {};
    const results = {};
    const list = document.getElementById("results");
    for (const [name, step] of this.steps) {
      try {
        results[name] = await step(call, state, config);
      } catch (error) {
        results[name] = { error: String(error) };
      }
      const item = document.createElement("li");
      item.dataset.step = name;
      item.textContent = JSON.stringify(results[name]);
      list.appendChild(item);
    }
    document.getElementById("done").textContent = "done";
    return results;
  },
};
