// Checks the deployment files against the real server: every flag that the
// Kubernetes manifests (rendered with `kubectl kustomize deploy/k8s`) and
// deploy/compose.yaml pass exists in `foxserve serve --help`; every probe,
// health-check and scrape path answers on a running `foxserve serve`; the
// ports in the flags, containerPorts, Service targetPorts, compose port
// mappings and Prometheus targets agree; and every fox_* metric that the
// Grafana dashboard, the HorizontalPodAutoscaler and the prometheus-adapter
// rules name is in the server's /metrics output.
//
// Environment: FOXSERVE_BIN, FOX_SOURCE_DIR (as tests/js/server/harness.mjs),
// KUBECTL (default: kubectl on PATH; it must have `kustomize`). Optional
// tools used when installed: promtool (checks prometheus.yml),
// docker-compose (checks compose.yaml against its schema).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { startServer, request, complete, waitFor, FOXSERVE_BIN, SOURCE_DIR } from '../js/server/harness.mjs';

const DEPLOY = path.join(SOURCE_DIR, 'deploy');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

const readYaml = (file) => yaml.load(fs.readFileSync(file, 'utf8'));
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// ---------------------------------------------------------------- helpers

// `--flag value` / `--flag=value` pairs of an argument list, in order.
function parseFlags(args) {
  const flags = [];
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    assert.ok(a.startsWith('--'), `argument ${JSON.stringify(a)} is not a --flag (args: ${args.join(' ')})`);
    const eq = a.indexOf('=');
    if (eq > 0) {
      flags.push([a.slice(0, eq), a.slice(eq + 1)]);
    } else if (i + 1 < args.length && !String(args[i + 1]).startsWith('--')) {
      flags.push([a, String(args[++i])]);
    } else {
      flags.push([a, null]);
    }
  }
  return flags;
}
// The last value of a flag (the server takes the last), else `fallback`.
function flagValue(flags, name, fallback) {
  let value = fallback;
  for (const [f, v] of flags) if (f === name) value = v;
  return value;
}

// `foxserve serve --help`: flag name -> default (string, or null).
function serveHelp() {
  const r = spawnSync(FOXSERVE_BIN, ['serve', '--help'], { encoding: 'utf8' });
  const text = (r.stdout ?? '') + (r.stderr ?? '');
  const flags = new Map();
  for (const line of text.split('\n')) {
    const m = /^\s+(--[a-z0-9][a-z0-9-]*)\b(.*)$/.exec(line);
    if (!m) continue;
    const d = /\(default "?([^")]*)"?\)\s*$/.exec(m[2]);
    flags.set(m[1], d ? d[1] : null);
  }
  assert.ok(flags.size > 10, `could not read the flags of \`foxserve serve --help\`:\n${text}`);
  return flags;
}

function assertFlagsKnown(flags, help, where) {
  for (const [f] of flags) {
    assert.ok(help.has(f), `${where} passes ${f}, which \`foxserve serve --help\` does not list`);
  }
}

// Prometheus text format: the names of the samples, and the label names and
// values seen per metric family (histogram suffixes folded into the family).
const SUFFIX = /_(bucket|sum|count)$/;
function parseExposition(text) {
  const samples = new Set();
  const families = new Map(); // family -> Map(label -> Set(values))
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    samples.add(m[1]);
    const fam = m[1].replace(SUFFIX, '');
    if (!families.has(fam)) families.set(fam, new Map());
    const labels = families.get(fam);
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (!labels.has(lm[1])) labels.set(lm[1], new Set());
      labels.get(lm[1]).add(lm[2]);
    }
  }
  return { samples, families };
}
const exposes = (expo, name) => expo.samples.has(name) || expo.families.has(name.replace(SUFFIX, ''));
const foxNames = (text) => [...new Set(String(text).match(/\bfox_[a-zA-Z0-9_]+/g) ?? [])];

// A container's port (a name or a number) as a number.
function resolvePort(container, port) {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(String(port))) return Number(port);
  const p = (container.ports ?? []).find((cp) => cp.name === port);
  assert.ok(p, `port ${JSON.stringify(port)} is not a named port of container ${container.name}`);
  return p.containerPort;
}

// "40s", "1m30s", 45 -> seconds.
function seconds(d) {
  if (typeof d === 'number') return d;
  let total = 0;
  for (const [, n, unit] of String(d).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit];
  }
  return total;
}

// ---------------------------------------------------------------- fixtures

let help;
let k8s;         // rendered objects
let compose;
let promConfig;
let dashboard;
let server;
let metricsText;
let expo;
let startError = null;

const byKind = (kind) => k8s.filter((o) => o.kind === kind);
const one = (kind) => {
  const objs = byKind(kind);
  assert.equal(objs.length, 1, `kubectl kustomize deploy/k8s should render exactly one ${kind}`);
  return objs[0];
};
const deployment = () => one('Deployment');
const container = () => {
  const cs = deployment().spec.template.spec.containers;
  const c = cs.find((x) => x.name === 'foxserve') ?? cs[0];
  return c;
};

before(async () => {
  help = serveHelp();

  const r = spawnSync(KUBECTL, ['kustomize', path.join(DEPLOY, 'k8s')], { encoding: 'utf8' });
  assert.ok(!r.error, `cannot run ${KUBECTL}: ${r.error?.message} (install Debian's kubernetes-client, or set KUBECTL)`);
  assert.equal(r.status, 0, `kubectl kustomize deploy/k8s failed:\n${r.stderr}`);
  k8s = yaml.loadAll(r.stdout).filter(Boolean);

  compose = readYaml(path.join(DEPLOY, 'compose.yaml'));
  promConfig = readYaml(path.join(DEPLOY, 'prometheus', 'prometheus.yml'));
  dashboard = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana', 'dashboards', 'foxserve.json'), 'utf8'));

  // The server, run with the Deployment's own arguments: only what cannot
  // work on a shared test machine is replaced (loopback, free ports, a small
  // KV pool, one engine thread, whatever device there is).
  const override = {
    '--host': '127.0.0.1', '--http-port': '0', '--grpc-port': '0',
    '--kv-cache-memory': '256MiB', '--threads': '1', '--device': 'auto',
  };
  // Flags the server does not know are left out here (the flag test names
  // them); if the rest are refused, the other checks run against a server
  // with the default flags and the start test reports why.
  const args = [];
  for (const [f, v] of parseFlags(container().args ?? [])) {
    if (f in override || !help.has(f)) continue;
    args.push(v === null ? f : `${f}=${v}`);
  }
  for (const [f, v] of Object.entries(override)) args.push(f, v);
  try {
    server = await startServer(args);
  } catch (err) {
    startError = err;
    server = await startServer([]);
  }

  // One finished request, so that every request histogram has samples.
  const res = await complete(server, { prompt: 'The forget gate decides', max_tokens: 4, temperature: 0 });
  assert.equal(res.status, 200, res.text);
  const m = await request(server, '/metrics');
  metricsText = m.status === 200 ? m.text : '';
  expo = parseExposition(metricsText);
});

after(async () => {
  if (server) await server.stop();
});

// ---------------------------------------------------------------- Kubernetes

test('kubectl kustomize deploy/k8s renders the expected objects', () => {
  const kinds = k8s.map((o) => `${o.apiVersion}/${o.kind}`).sort();
  for (const want of ['apps/v1/Deployment', 'v1/Service', 'autoscaling/v2/HorizontalPodAutoscaler',
    'v1/ConfigMap', 'monitoring.coreos.com/v1/ServiceMonitor']) {
    assert.ok(kinds.includes(want), `missing ${want}; rendered: ${kinds.join(', ')}`);
  }
});

test('foxserve serve starts with the Deployment\'s arguments', () => {
  assert.equal(startError, null, `foxserve serve refused the Deployment's arguments: ${startError?.message}`);
});

test('Deployment: flags exist in `foxserve serve --help`, ports agree', () => {
  const c = container();
  const flags = parseFlags(c.args ?? []);
  assertFlagsKnown(flags, help, 'the Deployment');
  assert.equal(flagValue(flags, '--host'), '0.0.0.0', 'the pod must listen on all addresses');
  // The device: auto, so the pod starts on whatever backend answers (and logs which).
  assert.equal(flagValue(flags, '--device'), 'auto', 'the pod should take --device auto');
  const deviceHelp = spawnSync(FOXSERVE_BIN, ['serve', '--help'], { encoding: 'utf8' }).stdout
    .split('\n').find((l) => /^\s+--device\b/.test(l));
  assert.match(deviceHelp, /\bcuda\b/, '`foxserve serve --help` lists cuda for --device');
  const httpPort = Number(flagValue(flags, '--http-port', help.get('--http-port')));
  const grpcPort = Number(flagValue(flags, '--grpc-port', help.get('--grpc-port')));
  assert.equal(resolvePort(c, 'http'), httpPort, 'containerPort "http" must equal --http-port');
  assert.equal(resolvePort(c, 'grpc'), grpcPort, 'containerPort "grpc" must equal --grpc-port');
  assert.equal(c.ports.length, 2);
  assert.ok(c.image, 'the container needs an image');
});

test('Deployment: GPU, resources, non-root', () => {
  const spec = deployment().spec.template.spec;
  const c = container();
  assert.equal(Number(c.resources?.limits?.['nvidia.com/gpu']), 1, 'limits nvidia.com/gpu: 1');
  assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, 'cpu and memory requests');
  assert.ok(c.resources?.limits?.memory, 'a memory limit');
  const runAsNonRoot = c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot;
  assert.equal(runAsNonRoot, true, 'runAsNonRoot');
  const uid = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
  assert.ok(uid === undefined || uid > 0, 'runAsUser must not be root');
  assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
});

test('Deployment: the grace period covers preStop plus --shutdown-timeout', () => {
  const spec = deployment().spec.template.spec;
  const c = container();
  const flags = parseFlags(c.args ?? []);
  assert.ok(flags.some(([f]) => f === '--shutdown-timeout'), 'the Deployment should set --shutdown-timeout');
  const shutdown = Number(flagValue(flags, '--shutdown-timeout'));
  const preStop = c.lifecycle?.preStop;
  assert.ok(preStop, 'a preStop hook lets the endpoints drop the pod before SIGTERM');
  let preStopSeconds;
  if (preStop.sleep) {
    preStopSeconds = Number(preStop.sleep.seconds);
  } else {
    const cmd = (preStop.exec?.command ?? []).join(' ');
    const m = /\bsleep\s+(\d+(?:\.\d+)?)/.exec(cmd);
    assert.ok(m, `preStop should sleep a few seconds: ${cmd}`);
    preStopSeconds = Number(m[1]);
  }
  assert.ok(preStopSeconds >= 2 && preStopSeconds <= 30, `preStop sleeps ${preStopSeconds} s`);
  const grace = spec.terminationGracePeriodSeconds;
  assert.ok(grace > shutdown + preStopSeconds,
    `terminationGracePeriodSeconds (${grace}) must exceed preStop (${preStopSeconds}) + --shutdown-timeout (${shutdown})`);
});

test('Deployment: probes name /health (liveness) and /ready (readiness) on the http port', async () => {
  const c = container();
  const httpPort = resolvePort(c, 'http');
  assert.equal(c.livenessProbe?.httpGet?.path, '/health');
  assert.equal(c.readinessProbe?.httpGet?.path, '/ready');
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const probe = c[kind];
    if (!probe) continue;
    assert.equal(resolvePort(c, probe.httpGet.port), httpPort, `${kind} must use the HTTP port`);
    const res = await request(server, probe.httpGet.path);
    assert.equal(res.status, 200, `${kind} ${probe.httpGet.path} answered ${res.status}`);
  }
});

test('Service: ports and targetPorts match the container', () => {
  const svc = one('Service');
  const c = container();
  const podLabels = deployment().spec.template.metadata.labels;
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(podLabels[k], v, `selector ${k}`);
  const ports = Object.fromEntries(svc.spec.ports.map((p) => [p.name, p]));
  assert.ok(ports.http && ports.grpc, 'Service ports named http and grpc');
  assert.equal(resolvePort(c, ports.http.targetPort ?? ports.http.port), resolvePort(c, 'http'));
  assert.equal(resolvePort(c, ports.grpc.targetPort ?? ports.grpc.port), resolvePort(c, 'grpc'));
  for (const p of svc.spec.ports) {
    const target = resolvePort(c, p.targetPort ?? p.port);
    assert.ok(c.ports.some((cp) => cp.containerPort === target), `Service port ${p.name} targets ${target}, not a containerPort`);
  }
});

test('ServiceMonitor scrapes /metrics on the Service http port', async () => {
  const sm = one('ServiceMonitor');
  const svc = one('Service');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) {
    assert.equal(svc.metadata.labels?.[k], v, `ServiceMonitor selects ${k}=${v}; the Service has ${svc.metadata.labels?.[k]}`);
  }
  assert.ok(sm.spec.endpoints.length >= 1);
  for (const ep of sm.spec.endpoints) {
    assert.ok(svc.spec.ports.some((p) => p.name === ep.port), `endpoint port ${ep.port} is not a Service port name`);
    assert.equal(resolvePort(container(), svc.spec.ports.find((p) => p.name === ep.port).targetPort), resolvePort(container(), 'http'));
    const res = await request(server, ep.path ?? '/metrics');
    assert.equal(res.status, 200, `${ep.path} answered ${res.status}`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  }
});

test('HPA scales the Deployment on fox_num_requests_waiting from the adapter', () => {
  const hpa = one('HorizontalPodAutoscaler');
  const d = deployment();
  assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
  assert.equal(hpa.spec.scaleTargetRef.name, d.metadata.name);
  assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
  const pods = hpa.spec.metrics.filter((m) => m.type === 'Pods');
  assert.equal(pods.length, 1);
  assert.equal(pods[0].pods.metric.name, 'fox_num_requests_waiting');
  assert.equal(pods[0].pods.target.type, 'AverageValue');
  assert.ok(pods[0].pods.target.averageValue !== undefined);

  const cm = byKind('ConfigMap').find((o) => o.metadata.name.includes('prometheus-adapter'));
  assert.ok(cm, 'a prometheus-adapter ConfigMap');
  const config = yaml.load(cm.data['config.yaml']);
  const rule = config.rules.find((r) => (r.name?.as ?? '') === 'fox_num_requests_waiting');
  assert.ok(rule, 'an adapter rule exposing fox_num_requests_waiting');
  assert.match(rule.seriesQuery, /^fox_num_requests_waiting\{/);
  assert.match(rule.metricsQuery, /<<\.Series>>/);
  assert.equal(rule.resources.overrides.pod.resource, 'pod');
  assert.equal(rule.resources.overrides.namespace.resource, 'namespace');
});

// ---------------------------------------------------------------- compose

function composeFoxserve() {
  const svc = compose.services?.foxserve;
  assert.ok(svc, 'compose.yaml has a foxserve service');
  const flags = parseFlags((svc.command ?? []).map(String));
  return { svc, flags,
    httpPort: Number(flagValue(flags, '--http-port', help.get('--http-port'))),
    grpcPort: Number(flagValue(flags, '--grpc-port', help.get('--grpc-port'))) };
}
// "8000:8000", "127.0.0.1:8000:8000/tcp", {target, published} -> container port.
function containerSide(p) {
  if (typeof p === 'object') return Number(p.target);
  return Number(String(p).replace(/\/(tcp|udp)$/, '').split(':').pop());
}

test('compose: foxserve builds from deploy/Containerfile, flags and ports agree', () => {
  const { svc, flags, httpPort, grpcPort } = composeFoxserve();
  assertFlagsKnown(flags, help, 'compose.yaml');
  assert.equal(path.resolve(DEPLOY, svc.build.context), SOURCE_DIR, 'build context: the repository root');
  assert.equal(svc.build.dockerfile, 'deploy/Containerfile');
  assert.equal(svc.image, 'foxserve:latest');
  const targets = (svc.ports ?? []).map(containerSide);
  assert.ok(targets.includes(httpPort), `compose publishes ${targets}, not the HTTP port ${httpPort}`);
  assert.ok(targets.includes(grpcPort), `compose publishes ${targets}, not the gRPC port ${grpcPort}`);
  const shutdown = Number(flagValue(flags, '--shutdown-timeout', help.get('--shutdown-timeout')));
  assert.ok(seconds(svc.stop_grace_period ?? '10s') > shutdown,
    `stop_grace_period (${svc.stop_grace_period}) must exceed --shutdown-timeout (${shutdown})`);
});

test('compose: the foxserve health check passes against a serving server', () => {
  const { svc, httpPort } = composeFoxserve();
  const hc = svc.healthcheck.test;
  assert.equal(hc[0], 'CMD');
  const script = hc.slice(1).join(' ');
  assert.match(script, /\/ready\b/, 'the health check should read /ready');
  // Same command, pointed at the test server's port.
  const hostPort = new RegExp(`\\b(127\\.0\\.0\\.1|localhost)([:/])${httpPort}\\b`, 'g');
  const argv = hc.slice(1).map((a) => a.replace(hostPort, `127.0.0.1$2${server.httpPort}`));
  assert.notDeepEqual(argv, hc.slice(1), 'the health check should name the HTTP port');
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, `health check failed: ${r.stderr}`);
});

test('compose: the Containerfile it builds is there', (t) => {
  if (!fs.existsSync(path.join(SOURCE_DIR, 'deploy', 'Containerfile'))) {
    t.skip('deploy/Containerfile is not in this tree yet');
    return;
  }
  assert.ok(true);
});

test('compose: Prometheus scrapes foxserve, Grafana is provisioned', () => {
  const { httpPort } = composeFoxserve();
  const prom = compose.services.prometheus;
  const grafana = compose.services.grafana;
  assert.match(prom.image, /^(docker\.io\/)?prom\/prometheus(:|$)/);
  assert.match(grafana.image, /^(docker\.io\/)?grafana\/grafana(:|$)/);
  const mounts = (svc) => (svc.volumes ?? []).map((v) => {
    const [src, dst] = String(v).split(':');
    return { src, dst };
  });
  // Prometheus reads deploy/prometheus/prometheus.yml.
  const pm = mounts(prom).find((m) => m.src.startsWith('.'));
  assert.ok(pm && fs.existsSync(path.resolve(DEPLOY, pm.src)), 'prometheus.yml is mounted from the repository');
  assert.equal(path.resolve(DEPLOY, pm.src), path.join(DEPLOY, 'prometheus', 'prometheus.yml'));
  const configFlag = (prom.command ?? []).find((a) => String(a).startsWith('--config.file='));
  if (configFlag) assert.equal(configFlag.split('=')[1], pm.dst);

  // Grafana: provisioning and dashboards mounted where the provider looks.
  const gm = mounts(grafana).filter((m) => m.src.startsWith('.'));
  for (const m of gm) assert.ok(fs.existsSync(path.resolve(DEPLOY, m.src)), `${m.src} exists`);
  const prov = gm.find((m) => path.resolve(DEPLOY, m.src) === path.join(DEPLOY, 'grafana', 'provisioning'));
  assert.equal(prov?.dst, '/etc/grafana/provisioning');
  const dash = gm.find((m) => path.resolve(DEPLOY, m.src) === path.join(DEPLOY, 'grafana', 'dashboards'));
  assert.ok(dash, 'deploy/grafana/dashboards is mounted');
  const provider = readYaml(path.join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'foxserve.yaml'));
  assert.equal(provider.providers[0].type, 'file');
  assert.equal(provider.providers[0].options.path, dash.dst);
  const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  if (home) assert.equal(home, `${dash.dst}/foxserve.json`);

  // The data source points at the compose Prometheus, with the uid the
  // dashboard's datasource variable defaults to.
  const ds = readYaml(path.join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yaml')).datasources[0];
  assert.equal(ds.type, 'prometheus');
  assert.equal(ds.uid, 'prometheus');
  const url = new URL(ds.url);
  assert.ok(compose.services[url.hostname], `data source host ${url.hostname} is a compose service`);
  assert.ok((prom.ports ?? []).map(containerSide).includes(Number(url.port)), 'data source port is Prometheus\'s');

  // prometheus.yml scrapes the compose foxserve's HTTP port every 5 s.
  const job = promConfig.scrape_configs.find((j) => j.job_name === 'foxserve');
  assert.ok(job, 'a foxserve scrape job');
  assert.equal(job.scrape_interval ?? promConfig.global.scrape_interval, '5s');
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  const targets = job.static_configs.flatMap((s) => s.targets);
  assert.deepEqual(targets, [`foxserve:${httpPort}`]);
});

test('prometheus.yml: the scrape path answers', async () => {
  const job = promConfig.scrape_configs.find((j) => j.job_name === 'foxserve');
  const res = await request(server, job.metrics_path ?? '/metrics');
  assert.equal(res.status, 200);
});

test('promtool check config accepts prometheus.yml', (t) => {
  if (!has('promtool')) { t.skip('promtool is not installed'); return; }
  const r = spawnSync('promtool', ['check', 'config', path.join(DEPLOY, 'prometheus', 'prometheus.yml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('docker-compose config accepts compose.yaml', (t) => {
  if (!has('docker-compose')) { t.skip('docker-compose is not installed'); return; }
  const r = spawnSync('docker-compose', ['-f', path.join(DEPLOY, 'compose.yaml'), 'config', '-q'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

// ---------------------------------------------------------------- metrics

test('/metrics is served in Prometheus text format', () => {
  assert.ok(metricsText, 'GET /metrics did not answer 200');
  assert.ok(expo.samples.size > 0);
});

function dashboardPanels() {
  const out = [];
  const walk = (ps) => { for (const p of ps ?? []) { out.push(p); walk(p.panels); } };
  walk(dashboard.panels);
  return out;
}
const dashboardExprs = () => dashboardPanels().flatMap((p) => (p.targets ?? []).map((t) => t.expr)).filter(Boolean);

test('every fox_* metric the dashboard, HPA and adapter rules use is exposed', () => {
  assert.ok(metricsText, 'GET /metrics did not answer 200');
  const used = new Map();
  const note = (names, where) => { for (const n of names) used.set(n, [...(used.get(n) ?? []), where]); };
  note(foxNames(JSON.stringify(dashboard)), 'dashboard');
  note(foxNames(JSON.stringify(one('HorizontalPodAutoscaler'))), 'HPA');
  for (const cm of byKind('ConfigMap')) note(foxNames(JSON.stringify(cm.data)), `ConfigMap ${cm.metadata.name}`);
  assert.ok(used.size >= 20, `only ${used.size} fox_* names found`);
  const missing = [...used].filter(([n]) => !exposes(expo, n)).map(([n, w]) => `${n} (${w.join(', ')})`);
  assert.deepEqual(missing, [], `not in /metrics:\n${missing.join('\n')}`);
});

test('the labels the dashboard groups and filters by are on the series', () => {
  assert.ok(metricsText, 'GET /metrics did not answer 200');
  for (const [fam, labels] of expo.families) {
    if (fam.startsWith('fox_')) assert.ok(labels.has('model_name'), `${fam} has no model_name label`);
  }
  const modelNames = expo.families.get('fox_num_requests_running')?.get('model_name');
  assert.ok(modelNames?.has(server.serving.model), 'model_name carries the served model name');
  const reasons = expo.families.get('fox_request_success_total')?.get('finished_reason') ?? new Set();
  for (const r of ['stop', 'length', 'abort', 'error']) assert.ok(reasons.has(r), `finished_reason="${r}"`);
  assert.ok(expo.families.get('fox_kv_live_fraction')?.get('layer')?.has('0'), 'fox_kv_live_fraction{layer="0"}');
  assert.ok(expo.families.get('fox_time_to_first_token_seconds')?.get('le'), 'histograms have le buckets');
  // Every `by (...)` label of the dashboard exists on some exposed family,
  // or is one Prometheus adds to every scraped series.
  const all = new Set([...expo.families].flatMap(([, l]) => [...l.keys()]));
  for (const label of ['instance', 'job']) all.add(label);
  for (const expr of dashboardExprs()) {
    for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
      for (const label of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
        assert.ok(all.has(label), `dashboard groups by ${label}, which no exposed series has`);
      }
    }
  }
  // The HTTP front end's and the process's series the dashboard shows.
  const exprs = dashboardExprs().join('\n');
  for (const n of ['http_requests_total', 'http_request_duration_seconds', 'fox_http_responses_incomplete_total',
    'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds', 'process_cpu_seconds_total']) {
    assert.ok(exprs.includes(n), `the dashboard shows ${n}`);
    assert.ok(expo.families.has(n), `${n} is not in /metrics`);
  }
  assert.ok(expo.families.get('http_requests_total')?.get('code')?.has('200'), 'http_requests_total{code="200"}');
  assert.ok(expo.families.get('http_requests_total')?.get('route')?.has('/v1/completions'),
    'http_requests_total{route="/v1/completions"}');
});

// ---------------------------------------------------------------- dashboard

test('dashboard: Grafana 10 schema, datasource and model_name variables, panels', () => {
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  assert.equal(dashboard.uid, 'foxserve');
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.datasource?.type, 'datasource');
  assert.equal(vars.datasource?.query, 'prometheus');
  assert.equal(vars.datasource?.current?.value, 'prometheus');
  assert.equal(vars.model_name?.type, 'query');
  assert.match(JSON.stringify(vars.model_name.query), /label_values\(fox_[a-z_]+, *model_name\)/);

  const panels = dashboardPanels();
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `panel ${p.title} fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `panel ${p.title} uses the datasource variable`);
    assert.ok(p.targets?.length, `panel ${p.title} has queries`);
    for (const t of p.targets) {
      assert.equal(t.datasource?.uid, '${datasource}');
      // Each fox_* selector is filtered by the model_name variable.
      for (const m of t.expr.matchAll(/\bfox_[a-z0-9_]+(\{[^}]*\})?/g)) {
        assert.ok((m[1] ?? '').includes('model_name=~"$model_name"'), `${p.title}: ${m[0]} lacks the model_name filter`);
      }
      // Balanced parentheses and brackets.
      let depth = 0;
      for (const ch of t.expr) { depth += ch === '(' || ch === '[' || ch === '{' ? 1 : ch === ')' || ch === ']' || ch === '}' ? -1 : 0; assert.ok(depth >= 0, t.expr); }
      assert.equal(depth, 0, t.expr);
    }
  }
  const exprs = dashboardExprs().join('\n');
  for (const metric of ['fox_time_to_first_token_seconds', 'fox_inter_token_latency_seconds', 'fox_e2e_request_latency_seconds']) {
    for (const q of ['0.5', '0.9', '0.99']) {
      assert.ok(exprs.includes(`histogram_quantile(${q}, sum by (le, model_name) (rate(${metric}_bucket{`), `${metric} p${q}`);
    }
  }
  for (const n of ['fox_generation_tokens_total', 'fox_prompt_tokens_total', 'fox_request_success_total',
    'fox_num_requests_running', 'fox_num_requests_waiting', 'fox_request_queue_time_seconds_bucket',
    'fox_kv_cache_usage_perc', 'fox_kv_blocks_live', 'fox_kv_blocks_allocated', 'fox_kv_blocks_evicted_total',
    'fox_attention_key_blocks_read_total', 'fox_attention_key_blocks_skipped_total', 'fox_kv_live_fraction']) {
    assert.ok(exprs.includes(n), `the dashboard shows ${n}`);
  }
  assert.match(exprs, /sum by \(finished_reason\)/);
  assert.match(exprs, /1 - sum by \(model_name\) \(fox_kv_blocks_live/);
});

// ---------------------------------------------------------------- drain

test('while draining, readiness fails and liveness holds; exit 0', async () => {
  // A long request keeps the server draining after SIGTERM.
  const ac = new AbortController();
  const res = await fetch(server.url('/v1/completions'), {
    method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: server.serving.model, prompt: 'drain', max_tokens: 8000, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read(); // the first chunk: it is running
  server.process.kill('SIGTERM');
  const c = container();
  try {
    await waitFor(async () => (await request(server, c.readinessProbe.httpGet.path)).status === 503,
      { timeoutMs: 5000, what: 'readiness probe 503 while draining' });
    assert.equal((await request(server, c.livenessProbe.httpGet.path)).status, 200, 'liveness stays 200 while draining');
  } finally {
    ac.abort(); // the aborted request ends the drain
  }
  const code = await server.stop();
  assert.equal(code, 0);
});
