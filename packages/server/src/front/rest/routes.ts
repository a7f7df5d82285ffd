import type { DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { getOption, hasOption } from "@bufbuild/protobuf";
import type { HttpRule } from "@stategate/api";
import { http } from "@stategate/api";
import type { PathTemplate } from "./template.js";
import { compareSpecificity, matchTemplate, parseTemplate, templateShape } from "./template.js";

/** A method and its `google.api.http` rule, additional_bindings included. */
export interface HttpBinding {
  method: DescMethod;
  rule: HttpRule;
}

/** A field a path variable fills. */
export interface PathField {
  /** The field path from the request message down to a scalar or enum field. */
  fields: DescField[];
  /** As written in the template (`sort.field`), for error messages. */
  name: string;
  /** True when the variable can span several segments (`{name=**}`, `{name=a/*}`). */
  multiSegment: boolean;
}

/** A route: which requests reach which method, and where the request fields come from. */
export interface Route {
  method: DescMethod;
  /** Upper-case HTTP method, or "*" for a custom rule that takes any. */
  httpMethod: string;
  template: PathTemplate;
  /** One per template variable, in order. */
  pathFields: PathField[];
  /** `*` for the whole message, a top-level field, or none. */
  body: "*" | DescField | undefined;
  /** The response field sent as the body, or the whole response when undefined. */
  responseBody: DescField | undefined;
}

/** A route that matched, with the raw (still percent-encoded) segments per variable. */
export interface RouteMatch {
  route: Route;
  captures: string[][];
}

/** The REST routes, tried most specific first. */
export interface RouteTable {
  readonly routes: readonly Route[];
  /** The route for this HTTP method and raw path (no query), if any. */
  match(httpMethod: string, rawPath: string): RouteMatch | undefined;
}

/** The method's full protobuf name, as error messages show it. */
export function methodName(method: DescMethod): string {
  return `${method.parent.typeName}.${method.name}`;
}

/** The methods that have a `google.api.http` option, with their rules. */
export function httpBindings(services: readonly DescService[]): HttpBinding[] {
  return services.flatMap((service) =>
    service.methods
      .filter((method) => hasOption(method, http))
      .map((method) => ({ method, rule: getOption(method, http) })),
  );
}

/**
 * Builds the route table. Throws, naming the method, on a rule that cannot be
 * served, and naming both methods when two rules share an HTTP method and an
 * equivalent template, so a clash stops start-up instead of shadowing a route.
 */
export function createRouteTable(bindings: readonly HttpBinding[]): RouteTable {
  const routes = bindings.flatMap(({ method, rule }) => {
    const nested = rule.additionalBindings.find((extra) => extra.additionalBindings.length > 0);
    if (nested) throw new Error(`${methodName(method)}: google.api.http: additional_bindings cannot nest`);
    return [rule, ...rule.additionalBindings].map((r) => toRoute({ method, rule: r }));
  });
  const byShape = new Map<string, Route[]>();
  for (const route of routes) {
    const shape = templateShape(route.template);
    const same = byShape.get(shape) ?? [];
    const clash = same.find(
      (r) => r.httpMethod === route.httpMethod || r.httpMethod === "*" || route.httpMethod === "*",
    );
    if (clash) {
      throw new Error(
        `REST routes conflict: ${route.httpMethod} ${shape} is bound by both ${methodName(clash.method)} (${clash.template.source}) and ${methodName(route.method)} (${route.template.source})`,
      );
    }
    byShape.set(shape, [...same, route]);
  }
  const ordered = [...routes].sort((a, b) => compareSpecificity(a.template, b.template));
  return {
    routes: ordered,
    match(httpMethod, rawPath) {
      for (const route of ordered) {
        if (route.httpMethod !== "*" && route.httpMethod !== httpMethod) continue;
        const captures = matchTemplate(route.template, rawPath);
        if (captures) return { route, captures };
      }
      return undefined;
    },
  };
}

function toRoute({ method, rule }: HttpBinding): Route {
  const where = `${methodName(method)}: google.api.http`;
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    throw new Error(`${where}: a client-streaming method cannot be served over REST`);
  }
  const { httpMethod, path } = patternOf(rule, where);
  let template: PathTemplate;
  try {
    template = parseTemplate(path);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  const pathFields = template.variables.map((v): PathField => {
    const name = v.fieldPath.join(".");
    const first = template.segments[v.start]!;
    return {
      fields: resolvePathField(method.input, v.fieldPath, `${where}: path variable ${name}`),
      name,
      multiSegment: v.end - v.start > 1 || first.kind === "**",
    };
  });
  let body: Route["body"];
  if (rule.body !== "") {
    if (httpMethod === "GET" || httpMethod === "DELETE") throw new Error(`${where}: ${httpMethod} cannot have a body`);
    if (rule.body === "*") {
      body = "*";
    } else {
      body = method.input.fields.find((f) => f.name === rule.body);
      if (!body) throw new Error(`${where}: body field ${rule.body} is not in ${method.input.typeName}`);
      if (pathFields.some((p) => p.fields[0] === body)) {
        throw new Error(`${where}: body field ${rule.body} is also bound by the path`);
      }
    }
  }
  let responseBody: DescField | undefined;
  if (rule.responseBody !== "") {
    responseBody = method.output.fields.find((f) => f.name === rule.responseBody);
    if (!responseBody) {
      throw new Error(`${where}: response_body field ${rule.responseBody} is not in ${method.output.typeName}`);
    }
  }
  return { method, httpMethod, template, pathFields, body, responseBody };
}

function patternOf(rule: HttpRule, where: string): { httpMethod: string; path: string } {
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      return { httpMethod: rule.pattern.case.toUpperCase(), path: rule.pattern.value };
    case "custom":
      return { httpMethod: rule.pattern.value.kind.toUpperCase(), path: rule.pattern.value.path };
    default:
      throw new Error(`${where}: the rule has no pattern`);
  }
}

/** Follows `a.b.c` down the request message; the end must be a singular scalar or enum. */
function resolvePathField(message: DescMessage, names: string[], where: string): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const [n, name] of names.entries()) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name);
    if (!field) throw new Error(`${where}: no field ${name} in ${current?.typeName ?? "a scalar"}`);
    fields.push(field);
    const last = n === names.length - 1;
    if (last && field.fieldKind !== "scalar" && field.fieldKind !== "enum") {
      throw new Error(`${where}: must name a singular scalar or enum field`);
    }
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}
