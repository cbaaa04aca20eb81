// A contract check of any backend: each exchange (request and answer) is
// validated against api/backend.yaml, as internal/refbackend's contract test
// validates the reference backend's (there with libopenapi-validator, here
// with Ajv's JSON Schema 2020-12, the dialect of OpenAPI 3.1).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";
import { repo } from "./helpers.mjs";

export const contract = YAML.parse(readFileSync(join(repo, "api/backend.yaml"), "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(contract, "backend.yaml");

function deref(node) {
  while (node && node.$ref) {
    node = node.$ref
      .replace(/^#\//, "")
      .split("/")
      .reduce((n, k) => n?.[k], contract);
  }
  return node;
}

function schemaErrors(schema, value, where) {
  const validate = schema.$ref ? ajv.getSchema("backend.yaml" + schema.$ref) : ajv.compile(schema);
  if (!validate) return [`${where}: no schema ${schema.$ref}`];
  if (validate(value)) return [];
  return validate.errors.map((e) => `${where}${e.instancePath} ${e.message}${e.params ? " " + JSON.stringify(e.params) : ""}`);
}

/** The problems of one request (path, headers with any case, raw body text) against the contract; [] when valid. */
export function requestProblems(path, headers, body) {
  const op = contract.paths[path]?.post;
  if (!op) return [`unknown operation ${path}`];
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const problems = [];
  for (const name of ["ECB-Timestamp", "ECB-Signature"]) if (!h[name.toLowerCase()]) problems.push(`missing security header ${name}`);
  for (const p of (op.parameters ?? []).map(deref)) {
    if (p.in !== "header") continue;
    const v = h[p.name.toLowerCase()];
    if (v === undefined) {
      if (p.required) problems.push(`missing header ${p.name}`);
      continue;
    }
    problems.push(...schemaErrors(p.schema, v, `header ${p.name}`));
  }
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [...problems, "request body is not JSON"];
  }
  const schema = op.requestBody?.content?.["application/json"]?.schema;
  if (schema) problems.push(...schemaErrors(schema, parsed, "request"));
  return problems;
}

/** The problems of one answer (status, content type, raw body text) to a call of path; [] when valid. */
export function responseProblems(path, status, contentType, body) {
  const op = contract.paths[path]?.post;
  if (!op) return [`unknown operation ${path}`];
  const resp = deref(op.responses?.[String(status)]);
  if (!resp) return [`status ${status} is not documented for ${path}`];
  const schema = resp.content?.["application/json"]?.schema;
  if (!schema) return [];
  if (!String(contentType ?? "").startsWith("application/json")) return [`content type ${contentType}, want application/json`];
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return ["response body is not JSON"];
  }
  return schemaErrors(schema, parsed, `response ${status}`);
}
