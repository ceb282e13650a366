// Static checks of terraform modules that cannot be initialised offline
// (their providers cannot be downloaded here): parse every .tf file with
// @cdktf/hcl2json and check references by name.
//
//   - every var.X, local.X, data.T.N and resource T.N used is declared;
//   - every module block with a local source points at a directory, passes
//     only variables the child declares and every variable it requires, and
//     module.M.O references name outputs the child declares;
//   - provider aliases used in `providers = {...}` are declared;
//   - every resource type's provider is in required_providers;
//   - templatefile() calls name an existing template and pass every
//     variable the template uses.
// Only the text inside ${...} and %{...} is searched, so descriptions and
// heredoc scripts do not produce false references.

import { parse } from "@cdktf/hcl2json";
import fs from "node:fs";
import path from "node:path";

const META_ARGS = new Set(["source", "version", "providers", "count", "for_each", "depends_on"]);
const PROVIDER_OF = (type) => type.split("_")[0];

export async function parseDir(dir) {
  const merged = {
    variable: {}, locals: {}, output: {}, resource: {}, data: {}, module: {}, provider: {},
    terraform: [], files: [],
  };
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".tf")).sort();
  for (const f of files) {
    const file = path.join(dir, f);
    const j = await parse(file, fs.readFileSync(file, "utf8"));
    merged.files.push(f);
    for (const [name, blocks] of Object.entries(j.variable ?? {})) merged.variable[name] = blocks[0];
    for (const l of j.locals ?? []) Object.assign(merged.locals, l);
    for (const [name, blocks] of Object.entries(j.output ?? {})) merged.output[name] = blocks[0];
    for (const kind of ["resource", "data"]) {
      for (const [type, byName] of Object.entries(j[kind] ?? {})) {
        for (const [name, blocks] of Object.entries(byName)) merged[kind][`${type}.${name}`] = blocks[0];
      }
    }
    for (const [name, blocks] of Object.entries(j.module ?? {})) merged.module[name] = blocks[0];
    for (const [name, blocks] of Object.entries(j.provider ?? {})) {
      merged.provider[name] = (merged.provider[name] ?? []).concat(blocks);
    }
    merged.terraform.push(...(j.terraform ?? []));
  }
  return merged;
}

// The expression text of every ${...} / %{...} in a string, nested braces included.
export function interpolations(s) {
  const out = [];
  for (let i = 0; i < s.length - 1; i++) {
    if ((s[i] === "$" || s[i] === "%") && s[i + 1] === "{" && s[i - 1] !== "$" && s[i - 1] !== "%") {
      let depth = 0;
      let j = i + 1;
      for (; j < s.length; j++) {
        if (s[j] === "{") depth++;
        else if (s[j] === "}" && --depth === 0) break;
      }
      out.push(s.slice(i + 2, j));
      i = j;
    }
  }
  return out;
}

function* strings(v) {
  if (typeof v === "string") yield v;
  else if (Array.isArray(v)) for (const x of v) yield* strings(x);
  else if (v && typeof v === "object") for (const x of Object.values(v)) yield* strings(x);
}

export function expressions(block) {
  const out = [];
  for (const s of strings(block)) out.push(...interpolations(s));
  return out;
}

const RE = {
  var: /(?<![\w.])var\.([A-Za-z_][\w-]*)/g,
  local: /(?<![\w.])local\.([A-Za-z_][\w-]*)/g,
  data: /(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)/g,
  resource: /(?<![\w.])((?:aws|powerdns|terraform)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)/g,
  module: /(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_][\w-]*))?/g,
  templatefile: /templatefile\(\s*"\$\{path\.module\}\/([^"]+)"\s*,\s*\{([\s\S]*)\}\s*\)/g,
};

function all(re, text) {
  return [...text.matchAll(re)];
}

// Template identifiers: ${name...} and %{ for a, b in name } / %{ if name }.
export function templateVariables(text) {
  const used = new Set();
  const loopVars = new Set();
  const noEscapes = text.replace(/\$\$\{/g, "").replace(/%%\{/g, "");
  for (const expr of interpolations(noEscapes)) {
    const m = expr.match(/^~?\s*for\s+(\w+)(?:\s*,\s*(\w+))?\s+in\s+(\w+)/);
    if (m) {
      loopVars.add(m[1]);
      if (m[2]) loopVars.add(m[2]);
      used.add(m[3]);
      continue;
    }
    const body = expr.replace(/^~?\s*(if|else|endif|endfor)\b/, "").replace(/~$/, "");
    for (const id of body.match(/(?<![\w.'"])[a-z_][a-z0-9_]*(?![\w(])/g) ?? []) {
      if (!["null", "true", "false", "in", "if", "for"].includes(id)) used.add(id);
    }
  }
  for (const v of loopVars) used.delete(v);
  return used;
}

export async function checkModule(dir, { seen = new Map() } = {}) {
  const problems = [];
  const m = await parseDir(dir);
  const rel = path.relative(process.cwd(), dir) || ".";
  const exprs = [];
  for (const kind of ["variable", "locals", "output", "resource", "data", "module", "provider"]) {
    for (const [name, block] of Object.entries(m[kind])) {
      for (const e of expressions(block)) exprs.push({ where: `${kind} ${name}`, e });
    }
  }

  const childCache = new Map();
  async function child(name) {
    if (!childCache.has(name)) {
      const src = m.module[name].source;
      const childDir = path.resolve(dir, src);
      childCache.set(name, fs.existsSync(childDir) ? await parseDir(childDir) : null);
    }
    return childCache.get(name);
  }

  for (const { where, e } of exprs) {
    for (const [, v] of all(RE.var, e)) {
      if (!(v in m.variable)) problems.push(`${rel}: ${where}: var.${v} is not declared`);
    }
    for (const [, l] of all(RE.local, e)) {
      if (!(l in m.locals)) problems.push(`${rel}: ${where}: local.${l} is not declared`);
    }
    for (const [, t, n] of all(RE.data, e)) {
      if (!(`${t}.${n}` in m.data)) problems.push(`${rel}: ${where}: data.${t}.${n} is not declared`);
    }
    for (const [full, t, n] of all(RE.resource, e)) {
      const idx = e.indexOf(full);
      if (e.slice(Math.max(0, idx - 5), idx) === "data.") continue;
      if (!(`${t}.${n}` in m.resource)) problems.push(`${rel}: ${where}: ${t}.${n} is not declared`);
    }
    for (const [, name, out] of all(RE.module, e)) {
      if (!(name in m.module)) {
        problems.push(`${rel}: ${where}: module.${name} is not declared`);
        continue;
      }
      const c = await child(name);
      if (c && out && !(out in c.output)) {
        problems.push(`${rel}: ${where}: module.${name}.${out}: ${m.module[name].source} has no output "${out}"`);
      }
    }
    for (const [, tpl, args] of all(RE.templatefile, e)) {
      const file = path.join(dir, tpl);
      if (!fs.existsSync(file)) {
        problems.push(`${rel}: ${where}: template ${tpl} does not exist`);
        continue;
      }
      const given = new Set([...args.matchAll(/^\s*(\w+)\s*=/gm)].map((x) => x[1]));
      for (const v of templateVariables(fs.readFileSync(file, "utf8"))) {
        if (!given.has(v)) problems.push(`${rel}: ${where}: template ${tpl} uses "${v}", which templatefile() does not pass`);
      }
    }
  }

  // Module calls.
  const aliases = new Set();
  for (const [name, blocks] of Object.entries(m.provider)) {
    for (const b of blocks) aliases.add(b.alias ? `${name}.${b.alias}` : name);
  }
  for (const [name, block] of Object.entries(m.module)) {
    const src = block.source;
    if (!src.startsWith(".")) continue;
    const c = await child(name);
    if (!c) {
      problems.push(`${rel}: module ${name}: source ${src} does not exist`);
      continue;
    }
    for (const arg of Object.keys(block)) {
      if (META_ARGS.has(arg)) continue;
      if (!(arg in c.variable)) problems.push(`${rel}: module ${name}: ${src} has no variable "${arg}"`);
    }
    for (const [v, decl] of Object.entries(c.variable)) {
      if (!("default" in decl) && !(v in block)) problems.push(`${rel}: module ${name}: required variable "${v}" of ${src} is not set`);
    }
    for (const p of [block.providers ?? []].flat().flatMap((x) => Object.values(x))) {
      const target = p.replace(/^\$\{|\}$/g, "");
      if (!aliases.has(target)) problems.push(`${rel}: module ${name}: provider ${target} is not declared`);
    }
    if (!seen.has(path.resolve(dir, src))) {
      seen.set(path.resolve(dir, src), true);
      problems.push(...(await checkModule(path.resolve(dir, src), { seen })));
    }
  }

  // Providers of the resources must be required.
  const required = new Set(m.terraform.flatMap((t) => (t.required_providers ?? []).flatMap((r) => Object.keys(r))));
  for (const key of [...Object.keys(m.resource), ...Object.keys(m.data)]) {
    const p = PROVIDER_OF(key);
    if (p !== "terraform" && !required.has(p)) problems.push(`${rel}: ${key}: provider "${p}" is not in required_providers`);
  }
  return problems;
}
