// The dashboard: sign in with an API key, then overview, course and certification pages that
// read the public API (/api/v1) and follow the store version (live.js). Every number shown is
// a number the API returned, formatted, never recomputed (the one sum, completions across the
// catalog, adds the course table's figures and says so).

import { ApiError, Unreachable, get, getAll, getJson, session } from "./api.js";
import { Live } from "./live.js";

const $ = (selector) => document.querySelector(selector);
const COURSE_PAGE_SIZES = [10, 25, 50, 100];
const RANGE_PRESETS = [7, 30, 90, 180, 365];
const MAX_RANGE_DAYS = 365;
const CERT_PAGE = 25;
const COLORS = ["#1c5bb8", "#b34700"];

const state = {
  tz: localStorage.getItem("training-analytics.tz") || Intl.DateTimeFormat().resolvedOptions().timeZone,
  days: 30,
  from: null,
  to: null,
  courseFilter: "",
  table: { sort: "enrollments", dir: "desc", query: "", page: 0, size: 25 },
  certStatus: "",
  certCursors: [null],
  expiringDays: 30,
};

let view = null; // { render: async () => void, dispose: () => void }
let courses = []; // the course table's rows, replaced (not grown) on every refresh

// --- small DOM helpers (text only: data never becomes markup) ----------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

const integer = new Intl.NumberFormat("en-US");
const fmt = {
  int: (n) => integer.format(n),
  pct: (n) => `${n}%`,
  hours: (n) => `${n} h`,
  plain: (n) => String(n),
};

function name(localized, fallback) {
  if (!localized) return fallback;
  return localized.en || localized.es || localized.pt || Object.values(localized)[0] || fallback;
}

function when(timestamp) {
  if (!timestamp) return "—";
  const moment = new Date(timestamp);
  if (Number.isNaN(moment.getTime())) return timestamp;
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: state.tz, dateStyle: "medium", timeStyle: "short",
  }).format(moment);
}

function today() {
  // YYYY-MM-DD in the chosen time zone (en-CA formats dates that way).
  return new Intl.DateTimeFormat("en-CA", { timeZone: state.tz }).format(new Date());
}

function addDays(day, delta) {
  const moment = new Date(`${day}T00:00:00Z`);
  moment.setUTCDate(moment.getUTCDate() + delta);
  return moment.toISOString().slice(0, 10);
}

function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000) + 1;
}

function range() {
  const to = state.to || today();
  const from = state.from || addDays(to, -(state.days - 1));
  return { from, to };
}

function cards(items) {
  return h("dl", { class: "cards" }, items.map(([label, value, sub, id]) =>
    h("div", { class: "card" },
      h("dt", {}, label),
      h("dd", { "data-card": id }, value, sub ? h("span", { class: "sub" }, sub) : null))));
}

function empty(text) {
  return h("p", { class: "empty" }, text);
}

// --- charts: ECharts (vendored), SVG renderer, with its aria description, and always a data
// table next to them as the text alternative -------------------------------------------------

// A view keeps its charts (and their containers) across refreshes: a refresh moves the same
// container into the new markup and gives the instance its new option, so a page refreshed for an
// hour creates no new chart; leaving the view disposes them.
const charts = new Map(); // container id -> { container, instance }

function chart(id, className, option, label) {
  let entry = charts.get(id);
  if (!entry) {
    entry = { container: h("div", { class: className, id, role: "img" }), instance: null };
    charts.set(id, entry);
  }
  entry.container.setAttribute("aria-label", label);
  // Drawn once the container is in the document (the caller inserts it synchronously).
  queueMicrotask(() => {
    if (!charts.has(id)) return; // the view was left meanwhile
    if (!entry.instance) entry.instance = window.echarts.init(entry.container, null, { renderer: "svg" });
    entry.instance.setOption(
      { aria: { enabled: true }, animation: false, color: COLORS, ...option },
      { notMerge: true },
    );
  });
  return entry.container;
}

function disposeCharts() {
  for (const entry of charts.values()) entry.instance?.dispose();
  charts.clear();
}

window.addEventListener("resize", () => {
  for (const entry of charts.values()) entry.instance?.resize();
});

function dataTable(caption, headers, rows) {
  return h("details", {},
    h("summary", {}, `${caption}: the numbers`),
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((text, i) =>
        h("th", { scope: "col", class: i ? "num" : null }, text)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) =>
        h("td", { class: i ? "num" : null }, cell)))))));
}

// --- the daily series (overview and course pages) ---------------------------------------

function rangeControls(onChange, withCourses) {
  const { from, to } = range();
  const preset = h("select", { id: "range-days", onchange: (event) => {
    state.days = Number(event.target.value);
    state.from = state.to = null;
    onChange();
  } }, RANGE_PRESETS.map((days) => h("option", { value: days, selected: days === state.days && !state.from }, `Last ${days} days`)),
  h("option", { value: "custom", selected: Boolean(state.from), disabled: true }, "Custom"));
  const fromInput = h("input", { type: "date", id: "range-from", value: from, max: to });
  const toInput = h("input", { type: "date", id: "range-to", value: to });
  const message = h("span", { class: "error", role: "alert", id: "range-error" });
  const apply = () => {
    const start = fromInput.value;
    const end = toInput.value;
    if (!start || !end) return;
    if (end < start) { message.textContent = "The end is before the start."; return; }
    if (daysBetween(start, end) > MAX_RANGE_DAYS) {
      message.textContent = `At most ${MAX_RANGE_DAYS} days.`;
      return;
    }
    message.textContent = "";
    state.from = start;
    state.to = end;
    onChange();
  };
  fromInput.addEventListener("change", apply);
  toInput.addEventListener("change", apply);
  const parts = [
    h("label", {}, "Range", preset),
    h("label", {}, "From", fromInput),
    h("label", {}, "To", toInput),
  ];
  if (withCourses) {
    const select = h("select", { id: "course-filter", onchange: (event) => {
      state.courseFilter = event.target.value;
      onChange();
    } }, h("option", { value: "" }, "All courses"),
    courses.map((course) => h("option", { value: course.id, selected: course.id === state.courseFilter }, course.name)));
    parts.push(h("label", {}, "Course", select));
  }
  return h("div", { class: "controls" }, parts, message);
}

async function series(courseId) {
  const { from, to } = range();
  const params = { from, to, courseId: courseId || undefined };
  const [enrollments, completions] = await Promise.all([
    getJson("/series/enrollments", params),
    getJson("/series/completions", params),
  ]);
  return { from, to, enrollments, completions };
}

function seriesBlock(data, title) {
  const { enrollments, completions, from, to } = data;
  const days = enrollments.points.map((p) => p.date);
  const block = h("section", { "aria-labelledby": "series-title" },
    h("h3", { id: "series-title" }, title),
    h("p", { class: "muted", id: "series-summary" },
      `${from} to ${to} (days as the API counts them): `,
      h("span", { "data-total": "enrollments" }, fmt.int(enrollments.summary.total)), " enrolments, ",
      h("span", { "data-total": "completions" }, fmt.int(completions.summary.total)), " completions."));
  if (!enrollments.summary.total && !completions.summary.total) {
    block.append(empty(`No enrolments or completions between ${from} and ${to}.`));
    return block;
  }
  block.append(chart("series-chart", "chart", {
    tooltip: { trigger: "axis" },
    legend: { data: ["Enrolments", "Completions"], top: 0 },
    grid: { left: 48, right: 16, top: 36, bottom: 28 },
    xAxis: { type: "category", data: days },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: "Enrolments", type: "line", data: enrollments.points.map((p) => p.count), showSymbol: days.length <= 60 },
      { name: "Completions", type: "line", data: completions.points.map((p) => p.count), showSymbol: days.length <= 60 },
    ],
  }, `${title}, ${from} to ${to}`));
  block.append(dataTable(title, ["Day", "Enrolments", "Completions"],
    days.map((day, i) => [day, fmt.int(enrollments.points[i].count), fmt.int(completions.points[i].count)])));
  return block;
}

// --- the course table: sortable, searchable, paginated, client side over every course --------

const COLUMNS = [
  { key: "name", label: "Course", text: true },
  { key: "status", label: "Status", text: true },
  { key: "enrollments", label: "Enrolments", format: fmt.int },
  { key: "completions", label: "Completions", format: fmt.int },
  { key: "completionRate", label: "Completion rate", format: fmt.pct },
  { key: "averageScore", label: "Average score", format: fmt.plain },
  { key: "averageTimeToComplete", label: "Average hours to complete", format: fmt.hours },
];

function courseRows(items) {
  return items.map((item) => ({
    id: item.id,
    name: name(item.title, item.id),
    status: item.status,
    ...item.analytics,
  }));
}

function courseTable(onChange) {
  const t = state.table;
  const query = t.query.trim().toLowerCase();
  const matching = query
    ? courses.filter((c) => c.name.toLowerCase().includes(query) || c.id.toLowerCase().includes(query))
    : courses.slice();
  const column = COLUMNS.find((c) => c.key === t.sort) || COLUMNS[2];
  const sign = t.dir === "asc" ? 1 : -1;
  matching.sort((a, b) => {
    const x = a[column.key];
    const y = b[column.key];
    const order = column.text ? String(x).localeCompare(String(y)) : x - y;
    return order * sign || a.name.localeCompare(b.name);
  });
  const pages = Math.max(1, Math.ceil(matching.length / t.size));
  t.page = Math.min(t.page, pages - 1);
  const shown = matching.slice(t.page * t.size, (t.page + 1) * t.size);

  const search = h("input", { type: "search", id: "course-search", value: t.query, placeholder: "Title or id" });
  search.addEventListener("input", () => {
    t.query = search.value;
    t.page = 0;
    onChange({ focus: "#course-search" });
  });
  const size = h("select", { id: "page-size", onchange: (event) => {
    t.size = Number(event.target.value);
    t.page = 0;
    onChange({ focus: "#page-size" });
  } }, COURSE_PAGE_SIZES.map((n) => h("option", { value: n, selected: n === t.size }, `${n} per page`)));

  const header = h("tr", {}, COLUMNS.map((c) => h("th", {
    scope: "col",
    class: c.text ? null : "num",
    "aria-sort": c.key === t.sort ? (t.dir === "asc" ? "ascending" : "descending") : null,
  }, h("button", { type: "button", "data-sort": c.key, onclick: () => {
    if (t.sort === c.key) t.dir = t.dir === "asc" ? "desc" : "asc";
    else { t.sort = c.key; t.dir = c.text ? "asc" : "desc"; }
    onChange({ focus: `button[data-sort="${c.key}"]` });
  } }, c.label))));

  let body;
  if (!courses.length) {
    body = empty("No courses yet. Create them through the API (POST /api/v1/courses), or start the service with --demo.");
  } else if (!shown.length) {
    body = empty(`No course matches “${t.query}”.`);
  } else {
    body = h("table", { id: "course-table" },
      h("caption", { class: "visually-hidden" }, "Courses, sortable by each column"),
      h("thead", {}, header),
      h("tbody", {}, shown.map((c) => {
        const row = h("tr", { class: "link", "data-course": c.id, onclick: (event) => {
          if (event.target.tagName !== "A") window.location.hash = `#/courses/${encodeURIComponent(c.id)}`;
        } }, COLUMNS.map((col, i) => {
          if (i === 0) return h("td", {}, h("a", { href: `#/courses/${encodeURIComponent(c.id)}` }, c.name));
          if (col.key === "status") return h("td", {}, h("span", { class: "badge" }, c.status));
          return h("td", { class: "num" }, col.format(c[col.key]));
        }));
        return row;
      })));
  }
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", id: "page-prev", disabled: t.page === 0, onclick: () => {
      t.page -= 1; onChange({ focus: "#page-prev" });
    } }, "Previous"),
    h("span", { id: "page-status", "aria-live": "polite" },
      `Page ${t.page + 1} of ${pages} (${fmt.int(matching.length)} course${matching.length === 1 ? "" : "s"})`),
    h("button", { type: "button", id: "page-next", disabled: t.page >= pages - 1, onclick: () => {
      t.page += 1; onChange({ focus: "#page-next" });
    } }, "Next"));
  return h("section", { "aria-labelledby": "courses-title", id: "courses" },
    h("h3", { id: "courses-title" }, "Courses"),
    h("div", { class: "controls" }, h("label", {}, "Search courses", search), h("label", {}, "Rows", size)),
    body, courses.length ? pager : null);
}

// --- pages --------------------------------------------------------------------------------

function overviewPage() {
  let data = null;
  const root = h("div");
  const draw = async ({ refetch = true, focus = null } = {}) => {
    if (refetch) {
      const [overview, credentials, items] = await Promise.all([
        getJson("/overview"),
        getJson("/credentials/analytics"),
        getAll("/analytics/courses"),
      ]);
      courses = courseRows(items);
      if (state.courseFilter && !courses.some((c) => c.id === state.courseFilter)) state.courseFilter = "";
      data = { overview, credentials, series: await series(state.courseFilter) };
    }
    const { overview, credentials } = data;
    const completions = courses.reduce((sum, c) => sum + c.completions, 0);
    const filterName = state.courseFilter ? (courses.find((c) => c.id === state.courseFilter) || {}).name : null;
    root.replaceChildren(
      h("h2", {}, "Overview"),
      cards([
        ["Courses", fmt.int(overview.totalCourses), `${fmt.int(overview.publishedCourses)} published · ${fmt.int(overview.draftCourses)} draft`, "courses"],
        ["Enrolments", fmt.int(overview.totalEnrollments), null, "enrollments"],
        ["Completions", fmt.int(completions), "across catalog courses", "completions"],
        ["Average completion rate", fmt.pct(overview.averageCompletionRate), null, "average-completion-rate"],
        ["Certifications issued", fmt.int(credentials.totalIssued), null, "issued"],
        ["Claimed", fmt.int(credentials.totalClaimed), null, "claimed"],
        ["Claim rate", fmt.pct(credentials.claimRate), null, "claim-rate"],
        ["Expiring in 30 days", fmt.int(credentials.expiringIn30Days), null, "expiring"],
      ]),
      rangeControls(() => renderView(), true),
      seriesBlock(data.series, filterName ? `Enrolments and completions per day: ${filterName}` : "Enrolments and completions per day"),
      courseTable((options) => draw({ refetch: false, ...options })),
    );
    if (focus) root.querySelector(focus)?.focus();
  };
  return { root, render: () => draw(), dispose: disposeCharts };
}

function coursePage(courseId) {
  const root = h("div");
  const render = async () => {
    let analytics;
    try {
      analytics = await getJson(`/courses/${encodeURIComponent(courseId)}/analytics`);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
        disposeCharts();
        root.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← Overview")), h("h2", {}, "No such course"),
          empty(`There is no course “${courseId}” in the catalog and no event for it.`));
        return;
      }
      throw error;
    }
    const [course, funnel, daily] = await Promise.all([
      get(`/courses/${encodeURIComponent(courseId)}`).then((r) => r.body, (error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }),
      getJson(`/courses/${encodeURIComponent(courseId)}/funnel`),
      series(courseId),
    ]);
    const title = course ? name(course.title, courseId) : courseId;
    const funnelBlock = h("section", { "aria-labelledby": "funnel-title", id: "funnel" },
      h("h3", { id: "funnel-title" }, "Module funnel"));
    if (!funnel.length) {
      funnelBlock.append(empty(course ? "This course has no modules, so there is no funnel." : "This course is not in the catalog, so its modules are unknown."));
    } else {
      funnelBlock.append(chart("funnel-chart", "chart small", {
        tooltip: { trigger: "axis" },
        legend: { data: ["Started", "Completed"], top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 48 },
        xAxis: { type: "category", data: funnel.map((s) => s.moduleName), axisLabel: { interval: 0, overflow: "truncate", width: 120 } },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: "Started", type: "bar", data: funnel.map((s) => s.started) },
          { name: "Completed", type: "bar", data: funnel.map((s) => s.completed) },
        ],
      }, `Module funnel of ${title}: learners who started and completed each module`), h("table", { id: "funnel-table" },
        h("caption", { class: "visually-hidden" }, "Module funnel in course order"),
        h("thead", {}, h("tr", {}, ["Module", "Started", "Completed", "Drop-off in module", "Drop-off to next module"].map((text, i) =>
          h("th", { scope: "col", class: i ? "num" : null }, text)))),
        h("tbody", {}, funnel.map((step) => h("tr", {},
          h("td", {}, step.moduleName),
          h("td", { class: "num" }, fmt.int(step.started)),
          h("td", { class: "num" }, fmt.int(step.completed)),
          h("td", { class: "num" }, fmt.pct(step.dropoffRate)),
          h("td", { class: "num" }, step.dropoffToNext === null ? "—" : fmt.pct(step.dropoffToNext)))))));
    }
    root.replaceChildren(
      h("p", {}, h("a", { href: "#/" }, "← Overview")),
      h("h2", { id: "course-title" }, title, course ? h("span", { class: "badge" }, course.isPublished ? " published" : " draft") : null),
      cards([
        ["Enrolments", fmt.int(analytics.enrollments), null, "enrollments"],
        ["Completions", fmt.int(analytics.completions), null, "completions"],
        ["Completion rate", fmt.pct(analytics.completionRate), null, "completion-rate"],
        ["Average score", fmt.plain(analytics.averageScore), null, "average-score"],
        ["Average hours to complete", fmt.hours(analytics.averageTimeToComplete), null, "average-time"],
      ]),
      funnelBlock,
      rangeControls(() => renderView(), false),
      seriesBlock(daily, "Enrolments and completions per day"),
    );
  };
  return { root, render, dispose: disposeCharts };
}

function certificationsPage() {
  const root = h("div");
  const render = async ({ focus = null } = {}) => {
    const cursor = state.certCursors[state.certCursors.length - 1];
    const [analytics, expiring, page] = await Promise.all([
      getJson("/credentials/analytics"),
      getJson("/certifications/expiring", { days: state.expiringDays, limit: 10 }),
      getJson("/certifications", { status: state.certStatus || undefined, limit: CERT_PAGE, cursor }),
    ]);
    const certRow = (c) => h("tr", {},
      h("td", {}, c.id),
      h("td", {}, c.userName || c.userId),
      h("td", {}, name(c.courseName, c.courseId)),
      h("td", {}, h("span", { class: "badge" }, c.status)),
      h("td", {}, when(c.issuedAt)),
      h("td", {}, when(c.claimedAt)),
      h("td", {}, when(c.expiresAt)));
    const certTable = (id, caption, items) => h("table", { id },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ["Certificate", "Learner", "Course", "Status", "Issued", "Claimed", "Expires"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map(certRow)));
    const statusSelect = h("select", { id: "cert-status", onchange: (event) => {
      state.certStatus = event.target.value;
      state.certCursors = [null];
      render({ focus: "#cert-status" }).catch(handleError);
    } }, ["", "issued", "claimed", "expired", "revoked"].map((s) =>
      h("option", { value: s, selected: s === state.certStatus }, s || "All statuses")));
    const daysSelect = h("select", { id: "expiring-days", onchange: (event) => {
      state.expiringDays = Number(event.target.value);
      render({ focus: "#expiring-days" }).catch(handleError);
    } }, [30, 90, 365].map((d) => h("option", { value: d, selected: d === state.expiringDays }, `Next ${d} days`)));
    const pageNumber = state.certCursors.length;
    root.replaceChildren(
      h("h2", {}, "Certifications"),
      cards([
        ["Issued", fmt.int(analytics.totalIssued), null, "issued"],
        ["Claimed", fmt.int(analytics.totalClaimed), null, "claimed"],
        ["Claim rate", fmt.pct(analytics.claimRate), null, "claim-rate"],
        ["Average hours to claim", fmt.hours(analytics.averageClaimTimeHours), null, "claim-hours"],
        ["Pending", fmt.int(analytics.pending), null, "pending"],
        ["Expiring in 30 days", fmt.int(analytics.expiringIn30Days), null, "expiring"],
      ]),
      h("section", { "aria-labelledby": "expiring-title" },
        h("h3", { id: "expiring-title" }, "Expiring soonest"),
        h("div", { class: "controls" }, h("label", {}, "Window", daysSelect)),
        expiring.length ? certTable("expiring-table", "Certificates expiring soonest", expiring)
          : empty(`No certificate expires in the next ${state.expiringDays} days.`)),
      h("section", { "aria-labelledby": "list-title" },
        h("h3", { id: "list-title" }, "All certifications"),
        h("div", { class: "controls" }, h("label", {}, "Status", statusSelect)),
        page.items.length ? certTable("cert-table", "Certifications", page.items)
          : empty(state.certStatus ? `No certification with status “${state.certStatus}”.` : "No certifications yet."),
        h("div", { class: "pager" },
          h("button", { type: "button", id: "cert-prev", disabled: pageNumber === 1, onclick: () => {
            state.certCursors.pop(); render({ focus: "#cert-prev" }).catch(handleError);
          } }, "Previous"),
          h("span", {}, `Page ${pageNumber} · times in ${state.tz}`),
          h("button", { type: "button", id: "cert-next", disabled: !page.nextCursor, onclick: () => {
            state.certCursors.push(page.nextCursor); render({ focus: "#cert-next" }).catch(handleError);
          } }, "Next"))),
    );
    if (focus) root.querySelector(focus)?.focus();
  };
  return { root, render, dispose: () => {} };
}

// --- shell: sign-in, routing, connection state -------------------------------------------

const connection = $("#connection");
let liveState = null;

function showConnection(text, down) {
  connection.textContent = text;
  connection.className = `connection ${down ? "down" : "live"}`;
}

function updatedNow() {
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: state.tz, timeStyle: "medium" }).format(new Date());
  showConnection(`Live · updated ${time} (${state.tz})`, false);
}

let rendering = null;
async function renderView() {
  if (!view) return;
  // One render at a time: a change arriving mid-render waits for it, then renders once more.
  if (rendering) {
    rendering.again = true;
    return rendering.promise;
  }
  rendering = { again: false };
  rendering.promise = (async () => {
    try {
      do {
        rendering.again = false;
        await view.render();
      } while (rendering.again);
      if (liveState === "live" || liveState === null) updatedNow();
    } catch (error) {
      handleError(error);
    } finally {
      rendering = null;
    }
  })();
  return rendering.promise;
}

function handleError(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut("Your API key was refused (unknown or revoked). Sign in with a valid key.");
  } else if (error instanceof Unreachable) {
    live.markStale();
    showConnection("Server unreachable. Retrying…", true);
  } else if (error instanceof ApiError && error.status >= 500) {
    live.markStale();
    showConnection("Data store unavailable: the server is up but cannot read the store. Retrying…", true);
  } else {
    showConnection(`Error: ${error.message}`, true);
  }
}

const live = new Live({
  onChange: () => renderView(),
  onState: (next) => {
    liveState = next;
    if (next === "live") updatedNow();
    else if (next === "store-down") showConnection("Data store unavailable: the server is up but cannot read the store. Retrying…", true);
    else if (next === "server-down") showConnection("Server unreachable. Retrying…", true);
    else if (next === "unauthorized") signOut("Your API key was refused (unknown or revoked). Sign in with a valid key.");
  },
});

function route() {
  if (!session.key) return;
  if (view) view.dispose();
  const hash = window.location.hash || "#/";
  let page = "overview";
  const match = hash.match(/^#\/courses\/(.+)$/);
  if (match) {
    view = coursePage(decodeURIComponent(match[1]));
    page = null;
  } else if (hash === "#/certifications") {
    view = certificationsPage();
    page = "certifications";
  } else {
    view = overviewPage();
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("#view").replaceChildren(view.root);
  view.root.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  renderView();
}

function showSignedIn(signedIn) {
  $("#sign-in").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#tools").hidden = !signedIn;
  if (!signedIn) {
    live.stop();
    if (view) view.dispose();
    view = null;
    courses = [];
    $("#view").replaceChildren();
    connection.textContent = "";
    connection.className = "connection";
  }
}

function signOut(message = "") {
  session.clear();
  showSignedIn(false);
  $("#sign-in-error").textContent = message;
  $("#api-key").focus();
}

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#api-key");
  const key = input.value.trim();
  const error = $("#sign-in-error");
  if (!key) {
    error.textContent = "Enter an API key.";
    return;
  }
  error.textContent = "Checking the key…";
  try {
    await get("/version", {}, { key });
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) {
      error.textContent = "This API key is not valid: it is unknown or has been revoked.";
    } else if (failure instanceof ApiError && failure.status === 403) {
      error.textContent = "This key may not read analytics.";
    } else if (failure instanceof Unreachable) {
      error.textContent = "The server does not answer; try again in a moment.";
    } else {
      error.textContent = `The server could not check the key (${failure.message}).`;
    }
    return;
  }
  input.value = "";
  error.textContent = "";
  session.save(key);
  start();
});

$("#sign-out").addEventListener("click", () => signOut("Signed out."));

function timeZones() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const all = new Set(["UTC", ...zones, state.tz]);
  const select = $("#tz");
  select.replaceChildren(...[...all].sort().map((zone) => h("option", { value: zone, selected: zone === state.tz }, zone)));
  select.addEventListener("change", () => {
    state.tz = select.value;
    localStorage.setItem("training-analytics.tz", state.tz);
    renderView();
  });
}

function start() {
  showSignedIn(true);
  route();
  live.start();
}

window.addEventListener("hashchange", () => {
  route();
  $("#main").focus();
});

function boot() {
  timeZones();
  if (session.key) start();
  else showSignedIn(false);
}

// echarts.min.js is a deferred classic script: it has run before this module does.
boot();
