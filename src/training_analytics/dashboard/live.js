// Live updates by a conditional poll of the store version (GET /api/v1/version with
// If-None-Match): about every 500 ms while connected, 304 while nothing changed, and the page's
// data is refetched only when the version moved. One timer at a time, one request at a time,
// nothing that grows: an open page costs the server one small request per half second.

import { API, ApiError, Unreachable, get } from "./api.js";

const INTERVAL_MS = 500;
const TIMEOUT_MS = 3000;
const MAX_BACKOFF_MS = 5000;

export class Live {
  /**
   * onChange(): refetch (awaited; polls wait for it, so refreshes never pile up).
   * onState(state, detail): "live" | "store-down" | "server-down" | "unauthorized".
   */
  constructor({ onChange, onState }) {
    this.onChange = onChange;
    this.onState = onState;
    this.etag = null;
    this.timer = null;
    this.controller = null;
    this.failures = 0;
    this.state = null;
    this.running = false;
  }

  start() {
    this.stop();
    this.running = true;
    this.etag = null;
    this.failures = 0;
    this.schedule(0);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  /** A refetch failed: the next successful poll refetches, whatever the version says. */
  markStale() {
    if (this.state === "live") this.state = "stale";
  }

  /** Refetch now, whatever the version says (a filter changed). */
  async refresh() {
    await this.onChange();
  }

  schedule(delay) {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.tick(), delay);
  }

  setState(state, detail) {
    if (state !== this.state) {
      this.state = state;
      this.onState(state, detail);
    }
  }

  async tick() {
    this.timer = null;
    const controller = (this.controller = new AbortController());
    const timeout = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let changed = false;
    try {
      const headers = this.etag ? { "If-None-Match": this.etag } : {};
      const reply = await get("/version", {}, { headers, signal: controller.signal });
      // Back after an outage: what the page shows may be stale, whatever the version says.
      const recovering = this.state !== null && this.state !== "live";
      if (!reply.notModified) {
        changed = this.etag !== null;
        this.etag = reply.response.headers.get("ETag");
      }
      if (recovering) changed = true;
      this.failures = 0;
      this.setState("live");
    } catch (error) {
      this.failures += 1;
      if (error instanceof ApiError && error.status === 401) {
        this.setState("unauthorized", error.message);
        this.stop();
        return;
      } else if (error instanceof ApiError && error.status >= 500) {
        this.setState("store-down", error.message);
      } else if (error instanceof Unreachable || error.name === "AbortError") {
        this.setState("server-down");
      } else {
        this.setState("server-down", error.message);
      }
    } finally {
      clearTimeout(timeout);
      if (this.controller === controller) this.controller = null;
    }
    if (!this.running) return;
    let pause = INTERVAL_MS;
    if (changed) {
      const started = performance.now();
      try {
        await this.onChange();
      } catch {
        // The view reports its own errors; the next poll tries again.
      }
      // A refetch that took long (a thousand courses' analytics) is not repeated at once: under
      // a stream of writes the page keeps the service at most about a third busy.
      pause = Math.max(INTERVAL_MS, 2 * (performance.now() - started));
    }
    const backoff = Math.min(INTERVAL_MS * 2 ** Math.max(this.failures - 1, 0), MAX_BACKOFF_MS);
    this.schedule(this.failures ? backoff : Math.min(pause, MAX_BACKOFF_MS));
  }
}

export const VERSION_URL = `${API}/version`;
