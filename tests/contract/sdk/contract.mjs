// Contract test of neon-local with Neon's official TypeScript SDK
// (@neondatabase/api-client): every operation neon-local serves is driven
// through the SDK's own client on a fresh project, and every answer is checked
// against the OpenAPI spec the SDK ships: the status code among the codes the
// spec documents for that operation, the body against that code's schema
// (required fields, types, enums, formats). Where the schema alone cannot tell
// (pagination, search, a missing database), the behaviour the spec describes
// is checked too. The error shapes (401, 404, 409, 423, 400) are provoked and
// checked the same way.
//
// It starts nothing: NEON_LOCAL_URL (e.g. http://127.0.0.1:4444/api/v2) and
// NEON_API_KEY say where neon-local is. Prints one line per answer, then
// "sdk contract: N operations, N mismatches"; exits 1 on any mismatch.
//
// SPEC_FILE=path checks against another copy of the spec (a deliberately
// broken one shows that the validator fails).

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiClient } from '@neondatabase/api-client';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';

const Ajv = AjvModule.default ?? AjvModule;
const addFormats = addFormatsModule.default ?? addFormatsModule;
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const baseURL = process.env.NEON_LOCAL_URL;
const apiKey = process.env.NEON_API_KEY;
if (!baseURL || !apiKey) {
    console.error('contract.mjs: set NEON_LOCAL_URL (neon-local\'s http://127.0.0.1:PORT/api/v2) and NEON_API_KEY');
    process.exit(2);
}

// The spec the SDK ships beside its code.
const sdkDir = dirname(require.resolve('@neondatabase/api-client/package.json'));
const specFile = process.env.SPEC_FILE || join(sdkDir, 'public-v2-for-users.gen.yaml');
const spec = YAML.parse(readFileSync(specFile, 'utf8'));
const sdkVersion = JSON.parse(readFileSync(join(sdkDir, 'package.json'), 'utf8')).version;
console.log(`SDK @neondatabase/api-client ${sdkVersion}; spec ${specFile} (OpenAPI ${spec.openapi}, API ${spec.info.version})`);

// --- the validator ---------------------------------------------------------

// Every $ref made absolute to one schema document ("neon"), so that a schema
// written inline in a response resolves its refs as well as a named one.
function absoluteRefs(node) {
    if (Array.isArray(node)) return node.map(absoluteRefs);
    if (node && typeof node === 'object') {
        const out = {};
        for (const [k, v] of Object.entries(node))
            out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? 'neon' + v : absoluteRefs(v);
        return out;
    }
    return node;
}
const components = absoluteRefs(spec.components);
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
// The spec writes format "int" on counts: an integer.
ajv.addFormat('int', { type: 'number', validate: Number.isInteger });
ajv.addSchema({ $id: 'neon', components: { schemas: components.schemas } });

// operationId -> { method, path, responses } from the spec.
const operations = {};
for (const [path, item] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(item))
        if (op && op.operationId) operations[op.operationId] = { method: method.toUpperCase(), path, responses: op.responses };

function resolveResponse(response) {
    while (response && response.$ref) response = components.responses[response.$ref.split('/').pop()];
    return response;
}

const compiled = new Map();
function validatorFor(operationId, code, response) {
    const key = `${operationId} ${code}`;
    if (!compiled.has(key)) {
        const schema = response?.content?.['application/json']?.schema;
        compiled.set(key, schema ? ajv.compile(absoluteRefs(schema)) : null);
    }
    return compiled.get(key);
}

// What the schema wanted, one line per mismatch, without the repeats that
// allOf/anyOf produce.
function describe(errors) {
    const seen = new Set();
    const out = [];
    for (const e of errors) {
        let what = e.message;
        if (e.keyword === 'enum') what += ` ${JSON.stringify(e.params.allowedValues)}`;
        if (e.keyword === 'additionalProperties') what += ` '${e.params.additionalProperty}'`;
        const line = `${e.instancePath || '/'}: ${what}`;
        if (!seen.has(line)) { seen.add(line); out.push(line); }
    }
    return out;
}

let answers = 0;
let mismatches = 0;
const exercised = new Set();

// Checks one answer: its status among those the spec documents for the
// operation (an error code may fall under "default"), and its body against
// that response's schema; `expect` adds what this call must answer beyond the
// schema. Prints the line and returns the body.
function check(operationId, res, { label = '', expect = null, quiet = false } = {}) {
    const op = operations[operationId];
    const problems = [];
    const status = res.status;
    exercised.add(operationId);
    if (!op) {
        problems.push(`the spec has no operation ${operationId}`);
    } else {
        const codes = Object.keys(op.responses);
        let response = op.responses[String(status)];
        if (!response && status >= 400) response = op.responses.default;
        if (!response) {
            problems.push(`status ${status}: the spec documents ${codes.join(', ')}`);
            response = op.responses[codes.find((c) => /^2/.test(c))];
        }
        response = resolveResponse(response);
        const validate = validatorFor(operationId, response === resolveResponse(op.responses.default) ? 'default' : status, response);
        if (validate && !validate(res.data)) problems.push(...describe(validate.errors));
        if (validate && typeof res.data !== 'object') problems.push(`/: a JSON body, got ${JSON.stringify(String(res.data).slice(0, 80))}`);
    }
    if (expect) problems.push(...expect(res).filter(Boolean));
    answers++;
    mismatches += problems.length;
    const name = `${operationId} ${status}${label ? ` (${label})` : ''}`;
    if (problems.length) console.log(`FAIL ${name}: ${problems.join('; ')}`);
    else if (!quiet) console.log(`ok   ${name}`);
    return res.data;
}

// The validator must fail on a wrong answer: a copy of a good answer, broken
// on purpose, must fail at every place it was broken.
function validatorRejectsBroken(operationId, good, breakIt, wanted) {
    const broken = structuredClone(good);
    breakIt(broken);
    const validate = validatorFor(operationId, 200, resolveResponse(operations[operationId].responses['200']));
    const found = validate(broken) ? [] : describe(validate.errors);
    const missed = wanted.filter((w) => !found.some((f) => f.startsWith(w)));
    answers++;
    if (missed.length) {
        mismatches += missed.length;
        console.log(`FAIL validator self-check: a broken ${operationId} answer was not caught at: ${missed.join('; ')} (found: ${found.join('; ')})`);
    } else console.log(`ok   validator self-check: a broken ${operationId} answer fails (${found.join('; ')})`);
}

// What a provoked error must be: that code, or at least an error.
const wantStatus = (code) => (res) => [res.status !== code && `status ${res.status}, expected ${code}`];

// --- the client ------------------------------------------------------------

// Every answer comes back to be checked, errors included.
const client = createApiClient({ apiKey, baseURL, validateStatus: () => true });
const badKeyClient = createApiClient({ apiKey: 'not-the-key', baseURL, validateStatus: () => true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits for every operation of the project to finish (each answer checked,
// printed only when it fails).
async function waitOperations(projectId) {
    for (let i = 0; i < 600; i++) {
        const body = check('listProjectOperations', await client.listProjectOperations({ projectId }), { quiet: true });
        const ops = body?.operations ?? [];
        if (ops.some((o) => o.status === 'failed' || o.status === 'error'))
            throw new Error(`an operation failed: ${JSON.stringify(ops.filter((o) => o.status === 'failed' || o.status === 'error'))}`);
        if (ops.every((o) => o.status === 'finished' || o.status === 'skipped' || o.status === 'cancelled')) return;
        await sleep(250);
    }
    throw new Error(`operations of ${projectId} still running`);
}

async function running(projectId, branchId) {
    const body = (await client.listProjectOperations({ projectId })).data;
    return (body?.operations ?? []).some((o) => o.branch_id === branchId && !['finished', 'failed', 'error', 'skipped', 'cancelled'].includes(o.status));
}

// --- the run ---------------------------------------------------------------

const stamp = Date.now().toString(36);
const projects = [];

async function main() {
    check('listProjects', await badKeyClient.listProjects({}), { label: 'bad key', expect: wantStatus(401) });
    check('listProjects', await client.listProjects({}));

    // Two projects, so that a page of one leaves another.
    let body = check('createProject', await client.createProject({ project: { name: `sdk-${stamp}-a`, pg_version: 15 } }));
    const projectId = body?.project?.id;
    if (!projectId) throw new Error('no project was made');
    projects.push(projectId);
    body = check('createProject', await client.createProject({ project: { name: `sdk-${stamp}-b`, pg_version: 15 } }), { label: 'second' });
    const otherId = body?.project?.id;
    if (otherId) projects.push(otherId);
    check('createProject', await client.createProject({ project: 'not an object' }), { label: 'bad body', expect: wantStatus(400) });
    await waitOperations(projectId);
    if (otherId) await waitOperations(otherId);

    // Pagination and search, which the schema alone does not show.
    body = check('listProjects', await client.listProjects({ limit: 1 }), {
        label: 'limit=1',
        expect: (res) => [
            res.data?.projects?.length > 1 && `/projects: at most 1 item with limit=1, got ${res.data.projects.length}`,
            !res.data?.pagination?.cursor && '/pagination: a cursor to the next page (limit=1 leaves more projects), got none',
        ],
    });
    if (body?.pagination?.cursor) {
        const first = body.projects?.[0]?.id;
        check('listProjects', await client.listProjects({ limit: 1, cursor: body.pagination.cursor }), {
            label: 'next page',
            expect: (res) => [res.data?.projects?.some((p) => p.id === first) && `/projects: the next page repeats ${first}`],
        });
    }
    check('listProjects', await client.listProjects({ search: `sdk-${stamp}-b` }), {
        label: 'search',
        expect: (res) => [(res.data?.projects ?? []).some((p) => p.name !== `sdk-${stamp}-b`) &&
            `/projects: only the project named sdk-${stamp}-b for search=sdk-${stamp}-b, got ${JSON.stringify((res.data?.projects ?? []).map((p) => p.name))}`],
    });
    check('listSharedProjects', await client.listSharedProjects({}));
    const project = check('getProject', await client.getProject(projectId));
    if (project?.project) validatorRejectsBroken('getProject', project, (p) => {
        delete p.project.id;
        p.project.name = 42;
        p.project.created_at = 'yesterday';
    }, ["/project: must have required property 'id'", '/project/name: must be string', '/project/created_at: must match format "date-time"']);
    check('getProject', await client.getProject('no-such-project-123'), { label: 'unknown project', expect: wantStatus(404) });
    check('updateProject', await client.updateProject(projectId, { project: { name: `sdk-${stamp}-a2` } }));
    check('updateProject', await client.updateProject(projectId, { project: 7 }), { label: 'bad body', expect: wantStatus(400) });

    // Operations, paged.
    body = check('listProjectOperations', await client.listProjectOperations({ projectId }));
    const opCount = body?.operations?.length ?? 0;
    check('listProjectOperations', await client.listProjectOperations({ projectId, limit: 1 }), {
        label: 'limit=1',
        expect: (res) => [
            res.data?.operations?.length > 1 && `/operations: at most 1 item with limit=1, got ${res.data.operations.length}`,
            opCount > 1 && !res.data?.pagination?.cursor && `/pagination: a cursor to the next page (limit=1 of ${opCount} operations), got none`,
        ],
    });
    if (body?.operations?.[0]) {
        const op = check('getProjectOperation', await client.getProjectOperation(projectId, body.operations[0].id));
        if (op?.operation) validatorRejectsBroken('getProjectOperation', op, (o) => {
            o.operation.status = 'almost-done';
            o.operation.id = 'not-a-uuid';
        }, ['/operation/status: must be equal to one of the allowed values', '/operation/id: must match format "uuid"']);
    }
    check('getProjectOperation', await client.getProjectOperation(projectId, '00000000-0000-0000-0000-000000000000'), { label: 'unknown operation', expect: wantStatus(404) });

    // Branches.
    body = check('listProjectBranches', await client.listProjectBranches({ projectId }));
    const main = body?.branches?.find((b) => b.default)?.id;
    if (!main) throw new Error('no default branch');
    check('countProjectBranches', await client.countProjectBranches({ projectId }));
    check('getProjectBranch', await client.getProjectBranch(projectId, main));
    check('getProjectBranch', await client.getProjectBranch(projectId, 'br-no-such-branch-123'), { label: 'unknown branch', expect: wantStatus(404) });
    check('listProjectBranches', await client.listProjectBranches({ projectId: 'no-such-project-123' }), { label: 'unknown project', expect: wantStatus(404) });

    body = check('createProjectBranch', await client.createProjectBranch(projectId, { branch: { name: 'b1', parent_id: main }, endpoints: [{ type: 'read_write' }] }));
    const b1 = body?.branch?.id;
    if (!b1) throw new Error('no branch b1');
    // A change while its operations run: 423 (when they still run).
    if (await running(projectId, b1))
        check('deleteProjectBranch', await client.deleteProjectBranch({ projectId, branchId: b1 }), { label: 'operations running', expect: wantStatus(423) });
    else console.log('note deleteProjectBranch: b1\'s operations had finished, 423 not provoked');
    if (await running(projectId, b1))
        check('updateProjectBranch', await client.updateProjectBranch(projectId, b1, { branch: { protected: false } }), { label: 'operations running', expect: wantStatus(423) });
    else console.log('note updateProjectBranch: b1\'s operations had finished, 423 not provoked');
    if (await running(projectId, b1))
        check('getProjectBranchSchema', await client.getProjectBranchSchema({ projectId, branchId: b1, db_name: 'neondb' }), { label: 'operations running', expect: wantStatus(423) });
    else console.log('note getProjectBranchSchema: b1\'s operations had finished, 423 not provoked');
    check('createProjectBranch', await client.createProjectBranch(projectId, { branch: { name: 'b1', parent_id: main } }), { label: 'name taken', expect: wantStatus(409) });
    check('createProjectBranch', await client.createProjectBranch(projectId, { branch: 'x' }), { label: 'bad body', expect: wantStatus(400) });
    await waitOperations(projectId);
    check('getProjectBranch', await client.getProjectBranch(projectId, b1));
    await schemaChecks(projectId, main, b1);
    check('updateProjectBranch', await client.updateProjectBranch(projectId, b1, { branch: { name: 'b1x' } }));
    check('updateProjectBranch', await client.updateProjectBranch(projectId, b1, { branch: { protected: 'yes' } }), { label: 'bad body', expect: wantStatus(400) });
    check('listProjectBranches', await client.listProjectBranches({ projectId, limit: 1 }), {
        label: 'limit=1',
        expect: (res) => [
            res.data?.branches?.length > 1 && `/branches: at most 1 item with limit=1, got ${res.data.branches.length}`,
            !res.data?.pagination?.next && !res.data?.pagination?.cursor && '/pagination: a way to the next page (limit=1 of 2 branches), got none',
        ],
    });

    // Endpoints.
    body = check('listProjectEndpoints', await client.listProjectEndpoints(projectId));
    body = check('listProjectBranchEndpoints', await client.listProjectBranchEndpoints(projectId, b1));
    const ep = body?.endpoints?.[0]?.id;
    if (ep) {
        check('getProjectEndpoint', await client.getProjectEndpoint(projectId, ep));
        check('suspendProjectEndpoint', await client.suspendProjectEndpoint(projectId, ep));
        await waitOperations(projectId);
        check('startProjectEndpoint', await client.startProjectEndpoint(projectId, ep));
        await waitOperations(projectId);
        check('createProjectEndpoint', await client.createProjectEndpoint(projectId, { endpoint: { branch_id: b1, type: 'read_write' } }), { label: 'branch has one', expect: wantStatus(409) });
        check('deleteProjectEndpoint', await client.deleteProjectEndpoint(projectId, ep));
        await waitOperations(projectId);
    }
    check('getProjectEndpoint', await client.getProjectEndpoint(projectId, 'ep-no-such-endpoint-123'), { label: 'unknown endpoint', expect: wantStatus(404) });
    check('createProjectEndpoint', await client.createProjectEndpoint(projectId, { endpoint: { branch_id: b1, type: 'read_write' } }));
    check('createProjectEndpoint', await client.createProjectEndpoint(projectId, { endpoint: 'x' }), { label: 'bad body', expect: wantStatus(400) });
    await waitOperations(projectId);

    // Roles.
    check('listProjectBranchRoles', await client.listProjectBranchRoles(projectId, b1));
    check('createProjectBranchRole', await client.createProjectBranchRole(projectId, b1, { role: { name: 'sdk_role' } }));
    await waitOperations(projectId);
    check('createProjectBranchRole', await client.createProjectBranchRole(projectId, b1, { role: { name: 'sdk_role' } }), { label: 'name taken', expect: wantStatus(409) });
    check('getProjectBranchRolePassword', await client.getProjectBranchRolePassword(projectId, b1, 'sdk_role'));
    check('getProjectBranchRolePassword', await client.getProjectBranchRolePassword(projectId, b1, 'no_such_role'), { label: 'unknown role', expect: wantStatus(404) });
    check('resetProjectBranchRolePassword', await client.resetProjectBranchRolePassword(projectId, b1, 'sdk_role'));
    await waitOperations(projectId);
    check('deleteProjectBranchRole', await client.deleteProjectBranchRole(projectId, b1, 'sdk_role'));
    await waitOperations(projectId);

    // Databases.
    check('listProjectBranchDatabases', await client.listProjectBranchDatabases(projectId, b1));
    check('createProjectBranchDatabase', await client.createProjectBranchDatabase(projectId, b1, { database: { name: 'sdk_db', owner_name: 'neondb_owner' } }));
    await waitOperations(projectId);
    check('createProjectBranchDatabase', await client.createProjectBranchDatabase(projectId, b1, { database: { name: 'sdk_db', owner_name: 'neondb_owner' } }), { label: 'name taken', expect: wantStatus(409) });
    check('createProjectBranchDatabase', await client.createProjectBranchDatabase(projectId, b1, { database: 5 }), { label: 'bad body', expect: wantStatus(400) });
    check('deleteProjectBranchDatabase', await client.deleteProjectBranchDatabase(projectId, b1, 'sdk_db'));
    await waitOperations(projectId);

    // Connection URIs.
    check('getConnectionURI', await client.getConnectionUri({ projectId, branch_id: main, database_name: 'neondb', role_name: 'neondb_owner' }));
    check('getConnectionURI', await client.getConnectionUri({ projectId, branch_id: main, database_name: 'no_such_db', role_name: 'neondb_owner' }), {
        label: 'missing database',
        expect: (res) => [res.status < 400 && `status ${res.status} with a URI for a database that does not exist, expected 404`],
    });
    check('getConnectionURI', await client.getConnectionUri({ projectId, branch_id: main, database_name: 'neondb', role_name: 'no_such_role' }), {
        label: 'missing role',
        expect: (res) => [res.status < 400 && `status ${res.status} with a URI for a role that does not exist, expected 404`],
    });

    // Snapshots and their schedule.
    body = check('createSnapshot', await client.createSnapshot({ projectId, branchId: main, name: 'sdk-snap' }));
    const snap = body?.snapshot?.id;
    await waitOperations(projectId);
    check('listSnapshots', await client.listSnapshots(projectId));
    if (snap) {
        check('updateSnapshot', await client.updateSnapshot(projectId, snap, { snapshot: { name: 'sdk-snap-2' } }));
        body = check('restoreSnapshot', await client.restoreSnapshot({ projectId, snapshotId: snap }, { name: 'from-snap' }));
        await waitOperations(projectId);
        body = check('restoreSnapshot', await client.restoreSnapshot({ projectId, snapshotId: snap }, { name: 'from-snap-pending', target_branch_id: main, finalize_restore: false }), { label: 'finalize later' });
        const pending = body?.branch?.id;
        await waitOperations(projectId);
        if (pending) {
            check('finalizeRestoreBranch', await client.finalizeRestoreBranch(projectId, pending, { name: 'main-before-snap' }));
            await waitOperations(projectId);
        }
    }
    check('finalizeRestoreBranch', await client.finalizeRestoreBranch(projectId, b1, {}), { label: 'nothing to finalize', expect: wantStatus(400) });
    check('restoreSnapshot', await client.restoreSnapshot({ projectId, snapshotId: 'snap-no-such-123' }, {}), { label: 'unknown snapshot', expect: wantStatus(404) });
    check('getSnapshotSchedule', await client.getSnapshotSchedule(projectId, main));
    check('setSnapshotSchedule', await client.setSnapshotSchedule(projectId, main, { schedule: [{ frequency: 'daily', hour: 3, retention_seconds: 86400 }] }));
    check('getSnapshotSchedule', await client.getSnapshotSchedule(projectId, main), { label: 'after set' });
    check('setSnapshotSchedule', await client.setSnapshotSchedule(projectId, main, { schedule: 'daily' }), { label: 'bad body', expect: wantStatus(400) });
    if (snap) {
        check('deleteSnapshot', await client.deleteSnapshot(projectId, snap));
        await waitOperations(projectId);
    }

    // Restore, set as default, delete.
    body = (await client.listProjectBranches({ projectId })).data;
    const mainNow = body?.branches?.find((b) => b.default)?.id ?? main;
    check('restoreProjectBranch', await client.restoreProjectBranch(projectId, mainNow, { source_branch_id: b1, preserve_under_name: 'main-preserved' }), { label: 'preserve_under_name' });
    await waitOperations(projectId);
    body = (await client.listProjectBranches({ projectId })).data;
    const preserved = body?.branches?.find((b) => b.name === 'main-preserved')?.id;
    check('getProjectBranch', await client.getProjectBranch(projectId, mainNow), {
        label: 'restored branch',
        expect: (res) => [res.data?.branch?.parent_id !== preserved &&
            `/branch/parent_id: the preserved branch ${preserved} (the backup becomes the parent), got ${res.data?.branch?.parent_id}`],
    });
    check('restoreProjectBranch', await client.restoreProjectBranch(projectId, mainNow, { source_branch_id: 7 }), { label: 'bad body', expect: wantStatus(400) });
    check('setDefaultProjectBranch', await client.setDefaultProjectBranch(projectId, b1));
    await waitOperations(projectId);
    check('setDefaultProjectBranch', await client.setDefaultProjectBranch(projectId, mainNow), { label: 'back' });
    await waitOperations(projectId);
    check('setDefaultProjectBranch', await client.setDefaultProjectBranch(projectId, 'br-no-such-branch-123'), { label: 'unknown branch', expect: wantStatus(404) });
    check('deleteProjectBranch', await client.deleteProjectBranch({ projectId, branchId: mainNow }), { label: 'default branch', expect: wantStatus(400) });
    check('deleteProjectBranch', await client.deleteProjectBranch({ projectId, branchId: b1 }));
    await waitOperations(projectId);

    await branchRecoveryChecks(projectId, mainNow);
    if (otherId) await projectRecoveryChecks(projectId, otherId);

    for (const id of projects.splice(0)) check('deleteProject', await client.deleteProject(id));
    check('deleteProject', await client.deleteProject('no-such-project-123'), { label: 'unknown project', expect: wantStatus(404) });
}

// The schema and its comparison: the SQL is a schema dump, the JSON lists
// tables, a branch compared with its parent (the default base) or with
// itself shows no difference, and every refusal has Neon's error shape.
async function schemaChecks(projectId, main, b1) {
    const schema = (query, label, expect) =>
        client.getProjectBranchSchema({ projectId, branchId: b1, db_name: 'neondb', ...query }).then((res) =>
            check('getProjectBranchSchema', res, { label, expect }));
    const compare = (branchId, query, label, expect) =>
        client.getProjectBranchSchemaComparison({ projectId, branchId, db_name: 'neondb', ...query }).then((res) =>
            check('getProjectBranchSchemaComparison', res, { label, expect }));
    await schema({}, 'sql', (res) => [
        res.status !== 200 && `status ${res.status}, expected 200`,
        res.status === 200 && !/PostgreSQL database dump/.test(res.data?.sql ?? '') && `/sql: a pg_dump of the schema, got ${JSON.stringify(String(res.data?.sql).slice(0, 80))}`,
        res.status === 200 && /Dumped (from|by)|\\restrict /.test(res.data?.sql ?? '') && '/sql: the lines that differ from one dump to the next (versions, \\restrict key) are left out',
    ]);
    await schema({ format: 'json' }, 'format=json', (res) => [
        res.status !== 200 && `status ${res.status}, expected 200`,
        res.status === 200 && !Array.isArray(res.data?.json?.tables) && '/json/tables: the tables, got none',
    ]);
    await schema({ format: 'yaml' }, 'bad format', wantStatus(400));
    await schema({ db_name: 'no_such_db' }, 'unknown database', wantStatus(404));
    await schema({ db_name: undefined }, 'no db_name', wantStatus(400));
    await schema({ lsn: '0/1' }, 'lsn', wantStatus(400));
    check('getProjectBranchSchema', await client.getProjectBranchSchema({ projectId, branchId: 'br-no-such-branch-123', db_name: 'neondb' }), { label: 'unknown branch', expect: wantStatus(404) });
    const noDiff = (res) => [res.status !== 200 && `status ${res.status}, expected 200`,
        res.status === 200 && res.data?.diff !== '' && `/diff: "" (the same schema), got ${JSON.stringify(String(res.data?.diff).slice(0, 120))}`];
    await compare(b1, { base_branch_id: main }, 'base_branch_id', noDiff);
    await compare(b1, {}, 'base is the parent', noDiff);
    await compare(main, {}, 'no parent', wantStatus(400));
    await compare(b1, { base_branch_id: 'br-no-such-branch-123' }, 'unknown base', wantStatus(404));
    await compare(b1, { db_name: 'no_such_db' }, 'unknown database', wantStatus(404));
    await compare(b1, { base_timestamp: '2020-01-01T00:00:00Z' }, 'base_timestamp', wantStatus(400));
}

const listed = (res, id) => (res.data?.branches ?? []).find((b) => b.id === id);

// A branch deleted as Neon does by default stays recoverable: listed with
// include_deleted (and its recovery info) but not without, recovered with
// its id; one deleted with hard_delete is gone and cannot be recovered.
async function branchRecoveryChecks(projectId, parentId) {
    let body = check('createProjectBranch', await client.createProjectBranch(projectId, { branch: { name: 'to-recover', parent_id: parentId }, endpoints: [{ type: 'read_write' }] }), { label: 'to recover' });
    const kept = body?.branch?.id;
    body = check('createProjectBranch', await client.createProjectBranch(projectId, { branch: { name: 'to-purge', parent_id: parentId } }), { label: 'to delete for good' });
    const purged = body?.branch?.id;
    if (!kept || !purged) throw new Error('no branches to delete and recover');
    await waitOperations(projectId);
    check('deleteProjectBranch', await client.deleteProjectBranch({ projectId, branchId: kept }), { label: 'recoverable', expect: wantStatus(200) });
    check('deleteProjectBranch', await client.deleteProjectBranch({ projectId, branchId: purged, hard_delete: true }), { label: 'hard_delete', expect: wantStatus(200) });
    await waitOperations(projectId);
    check('listProjectBranches', await client.listProjectBranches({ projectId, include_deleted: true }), {
        label: 'include_deleted',
        expect: (res) => {
            const item = listed(res, kept);
            return [!item && `/branches: the deleted branch ${kept}, got none`,
                item && !item.recovery && `/branches: ${kept}'s recovery info (deleted_at, recoverable_until), got none`,
                item?.recovery && item.recovery.deletion_method !== 'user' && `/branches: ${kept} deleted by 'user', got ${item.recovery.deletion_method}`,
                listed(res, purged) && `/branches: ${purged} was deleted with hard_delete, yet it is listed`];
        },
    });
    check('listProjectBranches', await client.listProjectBranches({ projectId }), {
        label: 'without deleted',
        expect: (res) => [listed(res, kept) && `/branches: the deleted branch ${kept} is listed without include_deleted`],
    });
    check('getProjectBranch', await client.getProjectBranch(projectId, kept), { label: 'deleted branch', expect: wantStatus(404) });
    check('recoverProjectBranch', await client.recoverProjectBranch(projectId, kept), { expect: wantStatus(200) });
    await waitOperations(projectId);
    check('getProjectBranch', await client.getProjectBranch(projectId, kept), { label: 'recovered branch', expect: wantStatus(200) });
    check('recoverProjectBranch', await client.recoverProjectBranch(projectId, kept), { label: 'not deleted', expect: wantStatus(404) });
    check('recoverProjectBranch', await client.recoverProjectBranch(projectId, purged), { label: 'deleted for good', expect: wantStatus(404) });
    check('recoverProjectBranch', await client.recoverProjectBranch(projectId, 'br-no-such-branch-123'), { label: 'unknown branch', expect: wantStatus(404) });
}

// A deleted project is listed with recoverable=true (and only deleted ones
// are), and comes back with its id.
async function projectRecoveryChecks(liveId, deletedId) {
    check('deleteProject', await client.deleteProject(deletedId), { label: 'recoverable', expect: wantStatus(200) });
    check('listProjects', await client.listProjects({ recoverable: true }), {
        label: 'recoverable',
        expect: (res) => {
            const ids = (res.data?.projects ?? []).map((p) => p.id);
            const item = (res.data?.projects ?? []).find((p) => p.id === deletedId);
            return [!item && `/projects: the deleted project ${deletedId}, got ${JSON.stringify(ids)}`,
                item && (!item.deleted_at || !item.recoverable_until) && `/projects: ${deletedId}'s deleted_at and recoverable_until, got ${item.deleted_at} and ${item.recoverable_until}`,
                ids.includes(liveId) && `/projects: only deleted projects with recoverable=true, got the live ${liveId}`];
        },
    });
    check('getProject', await client.getProject(deletedId), { label: 'deleted project', expect: wantStatus(404) });
    // Its endpoints are being suspended a moment after the delete, and the
    // project cannot come back meanwhile: 423, as Neon's clients retry.
    let res = await client.recoverProject(deletedId);
    for (let i = 0; i < 240 && res.status === 423; i++) {
        check('recoverProject', res, { label: 'its deletion still running', quiet: true });
        await sleep(250);
        res = await client.recoverProject(deletedId);
    }
    check('recoverProject', res, { expect: wantStatus(200) });
    await waitOperations(deletedId);
    check('getProject', await client.getProject(deletedId), { label: 'recovered project', expect: wantStatus(200) });
    check('recoverProject', await client.recoverProject(deletedId), { label: 'not deleted', expect: wantStatus(404) });
    check('recoverProject', await client.recoverProject('no-such-project-123'), { label: 'unknown project', expect: wantStatus(404) });
}

// Operations neon-local serves (from its route table, when beside us) that
// this run did not drive.
function notExercised() {
    const routes = join(here, '..', '..', '..', 'neon-local', 'routes.c');
    if (!existsSync(routes)) return [];
    const served = [...readFileSync(routes, 'utf8').matchAll(/\{\s*"([A-Z]+)",\s*"([^"]+)",\s*nl_/g)];
    const missing = [];
    for (const [, method, path] of served) {
        const id = Object.entries(operations).find(([, o]) => o.method === method && o.path === path)?.[0];
        if (!id) missing.push(`${method} ${path}: not in the spec`);
        else if (!exercised.has(id)) missing.push(`${id} (${method} ${path}): served but not driven by this test`);
    }
    return missing;
}

try {
    await main();
} catch (e) {
    mismatches++;
    console.log(`FAIL run stopped: ${e.stack || e}`);
} finally {
    for (const id of projects) await client.deleteProject(id).catch(() => {});
}
for (const m of notExercised()) {
    mismatches++;
    console.log(`FAIL ${m}`);
}
console.log(`sdk contract: ${exercised.size} operations, ${mismatches} mismatches`);
process.exit(mismatches ? 1 : 0);
