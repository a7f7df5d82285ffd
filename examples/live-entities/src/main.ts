/**
 * A live view of the entities of one domain and type, with a form to Set and
 * Edit them, over @stategate/sdk-web. The table changes only when an event
 * arrives on the stream, so whatever changes the entities (this page, another
 * tab, a server) shows up the same way.
 *
 * Query parameters: `gateway` (default http://127.0.0.1:8080), `protocol`
 * (`connect`, the default, or `grpc-web`), `format` (`binary`, the default, or
 * `json`), `domain` (default `acme`) and `type` (default `user`).
 */
import type { Entity, Event as EntityEvent, Protocol, StategateClient } from "@stategate/sdk-web";
import { ConnectError, createClient, EventOperation } from "@stategate/sdk-web";

const params = new URLSearchParams(location.search);
const gateway = params.get("gateway") ?? "http://127.0.0.1:8080";
const protocol = params.get("protocol") ?? "connect";
const format = params.get("format") ?? "binary";
const domain = params.get("domain") ?? "acme";
const type = params.get("type") ?? "user";

/** Largest page the gateway returns. */
const PAGE = 1000;
/** Wait before reopening a stream that broke. */
const RECONNECT_MS = 1000;

const tbody = element<HTMLTableSectionElement>("#entities tbody");
const form = element<HTMLFormElement>("#form");
const errorBox = element<HTMLParagraphElement>("#error");

/**
 * Per key, the newest version seen, deletes included: versions never go back,
 * so an event older than what is shown (replayed after a reconnect, or already
 * part of the Search result) changes nothing.
 */
const versions = new Map<string, bigint>();
/** The newest event position seen: a stream reopened after a break resumes after it, with no gap. */
let position = 0n;

element("#scope").textContent = `${domain} / ${type}`;
element("#gateway").textContent = gateway;
element("#protocol").textContent = `${protocol} (${format})`;

if ((protocol !== "connect" && protocol !== "grpc-web") || (format !== "binary" && format !== "json")) {
  setStatus("failed", "bad query parameters");
  showError('protocol must be "connect" or "grpc-web", and format "binary" or "json"');
} else {
  const client = createClient({ baseUrl: gateway, protocol: protocol as Protocol, binary: format === "binary" });

  /**
   * The position of the newest stored event of this domain and type. The API
   * has no call for it, so this pages through the history once; an app that
   * keeps the last position it saw (in localStorage, say) can skip it.
   */
  const newestPosition = async (c: StategateClient): Promise<bigint> => {
    let newest = 0n;
    for (let offset = 0; ; offset += PAGE) {
      const { events } = await c.event.search({ domain, type, limit: PAGE, offset });
      newest = events.at(-1)?.position ?? newest;
      if (events.length < PAGE) return newest;
    }
  };

  /** Shows the current entities, then follows their events for as long as the page is open. */
  const run = async (c: StategateClient): Promise<void> => {
    setStatus("connecting", "loading…");
    // The position first: whatever the Search below misses comes after it, and the stream replays it.
    position = await newestPosition(c);
    for (let offset = 0; ; offset += PAGE) {
      const { entities } = await c.entity.search({ domain, type, limit: PAGE, offset });
      for (const entity of entities) {
        versions.set(entity.key, entity.version);
        upsertRow(entity);
      }
      if (entities.length < PAGE) break;
    }
    for (;;) {
      try {
        const stream = c.event.stream({ domain, type, afterPosition: position });
        setStatus("live", `live · #${position}`);
        for await (const { event } of stream) if (event) apply(event);
      } catch (err) {
        setStatus("reconnecting", `reconnecting: ${ConnectError.from(err).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const op = (e.submitter as HTMLButtonElement | null)?.value === "edit" ? "edit" : "set";
    void submit(client, op);
  });
  tbody.addEventListener("click", (e) => {
    const target = e.target as HTMLElement;
    const row = target.closest("tr");
    const key = row?.dataset.key;
    if (!row || key === undefined) return;
    if (target.closest("button.delete")) {
      void call(() => client.entity.del({ domain, type, key }));
      return;
    }
    // Clicking a row loads it into the form, ready for an Edit.
    field("key").value = key;
    field("values").value = row.querySelector("code")?.textContent ?? "{}";
  });
  run(client).catch((err: unknown) => {
    setStatus("failed", "cannot reach the gateway");
    showError(err);
  });
}

/** Sends the form as a Set or an Edit. The table changes when the event comes back on the stream. */
async function submit(client: StategateClient, op: "set" | "edit"): Promise<void> {
  const key = field("key").value.trim();
  let values: unknown;
  try {
    values = JSON.parse(field("values").value);
  } catch {
    values = undefined;
  }
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    showError("values must be a JSON object");
    return;
  }
  const req = { domain, type, key, values: values as Entity["values"] };
  await call(() => (op === "set" ? client.entity.set(req) : client.entity.edit(req)));
}

/** Runs a call, showing its error (a ConnectError names the code and the field) under the form. */
async function call(fn: () => Promise<unknown>): Promise<void> {
  errorBox.hidden = true;
  try {
    await fn();
  } catch (err) {
    showError(err);
  }
}

/** Applies one event to the table: a delete removes the row; a set, edit or revert replaces it. */
function apply(event: EntityEvent): void {
  if (event.position > position) {
    position = event.position;
    setStatus("live", `live · #${position}`);
  }
  const entity = event.entity;
  if (!entity || event.version <= (versions.get(entity.key) ?? 0n)) return;
  versions.set(entity.key, event.version);
  if (event.operation === EventOperation.DELETE) {
    rowOf(entity.key)?.remove();
    updateEmpty();
  } else {
    upsertRow({ ...entity, version: event.version }, event);
  }
}

/** Replaces or inserts the row of `entity`, keeping the rows in key order. */
function upsertRow(entity: Entity, event?: EntityEvent): void {
  const row = document.createElement("tr");
  row.dataset.key = entity.key;
  row.append(
    cell("key", entity.key),
    cell("version", String(entity.version)),
    cell("values", ""),
    cell("change", event ? `${operationName(event.operation)} · #${event.position}` : "—"),
    cell("actions", ""),
  );
  const code = document.createElement("code");
  code.textContent = JSON.stringify(entity.values ?? {});
  row.querySelector("td.values")?.append(code);
  const del = document.createElement("button");
  del.type = "button";
  del.className = "delete";
  del.textContent = "delete";
  row.querySelector("td.actions")?.append(del);

  const existing = rowOf(entity.key);
  if (existing) existing.replaceWith(row);
  else {
    const next = [...tbody.rows].find((r) => (r.dataset.key ?? "") > entity.key);
    tbody.insertBefore(row, next ?? null);
  }
  if (event) {
    row.classList.add("flash");
    row.addEventListener("animationend", () => row.classList.remove("flash"), { once: true });
  }
  updateEmpty();
}

function operationName(op: EventOperation): string {
  switch (op) {
    case EventOperation.SET:
      return "set";
    case EventOperation.EDIT:
      return "edit";
    case EventOperation.REVERT:
      return "revert";
    case EventOperation.DELETE:
      return "delete";
    default:
      return "change";
  }
}

function rowOf(key: string): HTMLTableRowElement | undefined {
  return [...tbody.rows].find((r) => r.dataset.key === key);
}

function cell(className: string, text: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

function updateEmpty(): void {
  element("#empty").hidden = tbody.rows.length > 0;
}

function setStatus(state: "connecting" | "live" | "reconnecting" | "failed", text: string): void {
  const status = element("#status");
  status.dataset.state = state;
  status.textContent = text;
}

function showError(err: unknown): void {
  errorBox.textContent = typeof err === "string" ? err : ConnectError.from(err).message;
  errorBox.hidden = false;
}

function field(name: "key" | "values"): HTMLInputElement | HTMLTextAreaElement {
  return form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement;
}

function element<T extends HTMLElement = HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
}
