// node --test: static checks of terraform/ (see hcl_check.mjs), and the
// mapping of the example's regions file onto its module blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@cdktf/hcl2json";
import { checkModule, parseDir, templateVariables } from "./hcl_check.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const tfRoot = path.resolve(process.env.MERIDIAN_TERRAFORM_DIR ?? path.join(here, "../../terraform"));
const dirs = ["modules", "examples"].flatMap((d) =>
  fs.readdirSync(path.join(tfRoot, d)).map((x) => path.join(tfRoot, d, x)),
).filter((d) => fs.statSync(d).isDirectory());

test("terraform/ has the expected modules and example", () => {
  const names = dirs.map((d) => path.relative(tfRoot, d)).sort();
  for (const want of ["modules/topology", "modules/region-aws", "modules/dns-route53", "modules/dns-powerdns", "examples/three-regions"]) {
    assert.ok(names.includes(want), `missing ${want} (have ${names.join(", ")})`);
  }
});

for (const dir of dirs) {
  test(`references resolve in ${path.relative(tfRoot, dir)}`, async () => {
    const problems = await checkModule(dir);
    assert.deepEqual(problems, []);
  });
}

test("every region of the example's regions file maps to resources", async () => {
  const ex = path.join(tfRoot, "examples/three-regions");
  const m = await parseDir(ex);
  const regionsFile = JSON.parse(fs.readFileSync(path.join(ex, "regions.json"), "utf8"));
  const tfvarsText = fs.readFileSync(path.join(ex, "terraform.tfvars.example"), "utf8");
  const tfvars = await parse("terraform.tfvars.example", tfvarsText);
  const awsRegionsDefault = m.variable.aws_regions.default;
  const deployed = m.locals.deployed;

  // Region modules of the example, by the region they create.
  const regionModules = Object.fromEntries(
    Object.entries(m.module)
      .filter(([, b]) => b.source === "../../modules/region-aws")
      .map(([name, b]) => [b.region, { name, block: b }]),
  );
  assert.deepEqual(Object.keys(regionModules).sort(), regionsFile.regions.map((r) => r.name).sort(),
    "one region-aws module block per region of regions.json");

  for (const r of regionsFile.regions) {
    const { name, block } = regionModules[r.name];
    // Provider alias of the block, configured for this region's AWS region.
    const alias = [block.providers].flat()[0].aws.replace(/^\$\{aws\.|\}$/g, "");
    const provider = m.provider.aws.find((p) => p.alias === alias);
    assert.ok(provider, `${name}: provider aws.${alias} is not declared`);
    assert.equal(provider.region, `\${var.aws_regions["${r.name}"]}`, `${name}: provider aws.${alias} is not in aws_regions["${r.name}"]`);
    assert.ok(r.name in awsRegionsDefault, `aws_regions has no default for ${r.name}`);
    // Listed in local.deployed (which the output's precondition compares to the file).
    assert.equal(deployed[r.name], `\${module.${name}}`, `local.deployed lacks ${r.name} = module.${name}`);
    // Every per-region input comes from this region's entries.
    for (const [arg, v] of Object.entries(block)) {
      if (typeof v === "string" && v.includes("[\"")) {
        assert.ok(v.includes(`["${r.name}"]`) || v.includes(`"${r.name}"`), `${name}.${arg} = ${v} does not use region ${r.name}`);
      }
    }
    // The example tfvars describe the network this region needs.
    const net = tfvars.networks?.[r.name];
    assert.ok(net, `terraform.tfvars.example: networks has no "${r.name}"`);
    assert.equal(net.public_subnet_ids.length, r.relays.length, `${r.name}: one public subnet per relay endpoint`);
    assert.deepEqual(Object.keys(net.nats_subnet_ids).sort(), r.nats.servers.map((s) => s.name).sort(),
      `${r.name}: nats_subnet_ids must name every NATS server`);
    if (r.control || r.healthcheck) assert.ok(net.service_subnet_id, `${r.name}: service_subnet_id is needed`);
    assert.ok(tfvars.certificate_arns?.[r.name], `terraform.tfvars.example: certificate_arns has no "${r.name}"`);
  }

  // DNS modules take the topology, so their records follow the file.
  for (const dns of ["dns_route53", "dns_powerdns"]) {
    assert.equal(m.module[dns]?.topology, "${module.topology}", `${dns} must take module.topology`);
  }
});

test("the example's health agent addresses are allowed on the admin ports", async () => {
  const ex = path.join(tfRoot, "examples/three-regions");
  const regionsFile = JSON.parse(fs.readFileSync(path.join(ex, "regions.json"), "utf8"));
  const tfvars = await parse("terraform.tfvars.example", fs.readFileSync(path.join(ex, "terraform.tfvars.example"), "utf8"));
  for (const r of regionsFile.regions.filter((x) => x.healthcheck)) {
    const host = new URL(r.healthcheck.url).hostname;
    assert.ok(tfvars.admin_cidrs.includes(`${host}/32`), `admin_cidrs lacks ${r.name}'s agent ${host}/32`);
  }
});

test("the checker reports broken references", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hclcheck-"));
  try {
    fs.mkdirSync(path.join(tmp, "child/templates"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "child/main.tf"), `
variable "a" {}
variable "b" {
  default = 1
}
output "x" {
  value = var.a
}
locals {
  s = templatefile("\${path.module}/templates/t.tftpl", {
    one = 1
  })
}
`);
    fs.writeFileSync(path.join(tmp, "child/templates/t.tftpl"), "$${escaped} ${one} ${two} %{ for k, v in three }${k}${v}%{ endfor }\n");
    fs.writeFileSync(path.join(tmp, "main.tf"), `
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
module "c" {
  source    = "./child"
  providers = { aws = aws.nowhere }
  nope      = var.undeclared
}
resource "aws_s3_bucket" "b" {
  bucket = "\${local.missing}-\${module.c.y}-\${aws_s3_bucket.other.id}-\${data.aws_region.r.name}"
}
resource "powerdns_record" "r" {
  zone = "x"
}
`);
    const problems = await checkModule(tmp);
    const want = [
      "var.undeclared is not declared",
      "local.missing is not declared",
      "module.c.y: ./child has no output \"y\"",
      "aws_s3_bucket.other is not declared",
      "data.aws_region.r is not declared",
      "./child has no variable \"nope\"",
      "required variable \"a\" of ./child is not set",
      "provider aws.nowhere is not declared",
      "powerdns_record.r: provider \"powerdns\" is not in required_providers",
      "uses \"two\", which templatefile() does not pass",
      "uses \"three\", which templatefile() does not pass",
    ];
    for (const w of want) assert.ok(problems.some((p) => p.includes(w)), `not reported: ${w}\ngot:\n${problems.join("\n")}`);
    assert.ok(!problems.some((p) => p.includes("escaped") || p.includes('"one"') || p.includes('"k"')), problems.join("\n"));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("template variable extraction", () => {
  assert.deepEqual([...templateVariables("${a} $${b} %{ if c != null }${d}%{ endif } %{ for i, u in e }${i}${u}%{ endfor }")].sort(), ["a", "c", "d", "e"]);
});

test("render/ passes the same template arguments as modules/region-aws", async () => {
  const mod = await parseDir(path.join(tfRoot, "modules/region-aws"));
  const calls = [];
  for (const s of Object.values(mod.locals).filter((v) => typeof v === "string")) {
    for (const m of s.matchAll(/templatefile\([^,]+bootstrap\.sh\.tftpl"\s*,\s*\{([\s\S]*?)\n\s*\}\)/g)) {
      calls.push(new Set([...m[1].matchAll(/^\s*(\w+)\s*=/gm)].map((x) => x[1])));
    }
  }
  assert.ok(calls.length >= 3, `expected the relay, NATS and service calls, found ${calls.length}`);
  const render = await parseDir(path.join(here, "render"));
  const base = new Set(Object.keys(render.locals.base));
  for (const c of calls) {
    assert.deepEqual([...c].filter((k) => !base.has(k)), [], "render/main.tf lacks arguments the module passes");
    assert.deepEqual([...base].filter((k) => !c.has(k)), [], "render/main.tf passes arguments the module does not");
  }
});

// Release hygiene of every module and the example: a README that names
// every variable and output (each with a description in the .tf files),
// provider and Terraform version ranges with an upper bound, a backend
// example, and a provider lock file that git would keep.
for (const dir of dirs) {
  const rel = path.relative(tfRoot, dir);
  test(`${rel}: README describes every variable and output`, async () => {
    const m = await parseDir(dir);
    const readme = path.join(dir, "README.md");
    assert.ok(fs.existsSync(readme), `${rel} has no README.md`);
    const text = fs.readFileSync(readme, "utf8");
    for (const [kind, names] of [["variable", Object.keys(m.variable)], ["output", Object.keys(m.output)]]) {
      for (const name of names) {
        const block = kind === "variable" ? m.variable[name] : m.output[name];
        assert.ok(typeof block.description === "string" && block.description.length > 10, `${rel}: ${kind} ${name} has no description`);
        assert.ok(text.includes("`" + name + "`"), `${rel}/README.md does not describe ${kind} ${name}`);
      }
    }
    assert.match(text, /Apache-2\.0/, `${rel}/README.md does not state the licence`);
  });

  test(`${rel}: versions have an upper bound`, async () => {
    const m = await parseDir(dir);
    for (const t of m.terraform) {
      if (t.required_version) assert.match(t.required_version, /</, `${rel}: required_version ${t.required_version} has no upper bound`);
      for (const rp of t.required_providers ?? []) {
        for (const [name, spec] of Object.entries(rp)) {
          assert.match(spec.version ?? "", />=.*,\s*</, `${rel}: provider ${name} version "${spec.version}" needs a range with an upper bound`);
        }
      }
    }
  });
}

test("the example has a backend example, and git keeps provider lock files", async () => {
  const ex = path.join(tfRoot, "examples/three-regions");
  const text = fs.readFileSync(path.join(ex, "backend.tf.example"), "utf8");
  const j = await parse("backend.tf", text);
  const s3 = j.terraform?.[0]?.backend?.[0]?.s3?.[0] ?? j.terraform?.[0]?.backend?.s3?.[0];
  assert.ok(s3, `backend.tf.example declares no s3 backend: ${JSON.stringify(j)}`);
  assert.equal(s3.encrypt, true);
  assert.ok(s3.dynamodb_table || s3.use_lockfile, "the backend example must lock the state");
  const ignored = fs.readFileSync(path.join(tfRoot, ".gitignore"), "utf8").split("\n").map((l) => l.trim());
  for (const pat of ignored) {
    assert.ok(!(pat === ".terraform.lock.hcl" || pat === "*.hcl" || pat === "*.lock.hcl"), `terraform/.gitignore ignores the lock file (${pat})`);
  }
  assert.match(fs.readFileSync(path.join(ex, "README.md"), "utf8"), /terraform providers lock/);
});
