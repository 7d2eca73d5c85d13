// The public API, as any client calls it: a bearer key, JSON in, problem+json errors out.
// The key lives in sessionStorage only (gone when the browser session ends), never in a URL.

const KEY_NAME = "training-analytics.api-key";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The server could not be reached at all (down, restarting, network gone). */
export class Unreachable extends Error {}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_NAME);
  },
  save(key) {
    sessionStorage.setItem(KEY_NAME, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_NAME);
  },
};

export function url(path, params = {}) {
  const target = new URL(API + path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      target.searchParams.set(name, String(value));
    }
  }
  return target;
}

/** GET a JSON resource; ApiError for an error answer, Unreachable when nothing answered. */
export async function get(path, params = {}, { key = session.key, headers = {}, signal } = {}) {
  let response;
  try {
    response = await fetch(url(path, params), {
      headers: { Accept: "application/json", Authorization: `Bearer ${key}`, ...headers },
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Unreachable("the server does not answer");
  }
  if (response.status === 304) return { notModified: true, response };
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // Not JSON (a proxy's page): the status says enough.
    }
    throw new ApiError(response.status, problem);
  }
  return { body: await response.json(), response };
}

export async function getJson(path, params = {}) {
  return (await get(path, params)).body;
}

/** Every item of a cursor-paginated listing (the course table needs them all to sort). */
export async function getAll(path, params = {}, limit = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await getJson(path, { ...params, limit, cursor });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}
