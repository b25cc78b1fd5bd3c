// Parse an AsyncAPI document with the official parser and print its diagnostics as JSON.
// Usage: node validate.mjs path/to/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
const severities = ["error", "warning", "information", "hint"];
const out = {
  parsed: document !== undefined,
  version: document?.version(),
  operations: document ? document.operations().all().map((op) => op.id()) : [],
  diagnostics: diagnostics.map((d) => ({
    severity: severities[d.severity] ?? String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path.join("/"),
  })),
};
process.stdout.write(JSON.stringify(out));
