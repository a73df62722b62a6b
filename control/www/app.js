// The report page (control/report_page.h): plain JavaScript, no framework, nothing from another
// origin. Every value shown comes from the management API (docs/api.md), asked with fetch() and the
// token the operator typed, which is kept in sessionStorage only (never in a URL, never in a
// cookie). Values from the API are attacker-controlled (subjects, file names): they only ever
// become text nodes and attribute values (el(), textContent), never markup.
'use strict';

(function () {
  const TOKEN_KEY = 'sluice.token';
  const REFRESH_MS = 10000;
  const MESSAGE_KEYS = ['clean', 'malicious', 'unscannable', 'pending', 'no_files'];
  const FILE_KEYS = ['clean', 'malicious', 'unknown', 'not_looked_up'];
  const LABELS = {
    clean: 'clean', malicious: 'malicious', unscannable: 'unscannable', pending: 'pending (analysis)',
    no_files: 'no files', unknown: 'unknown', not_looked_up: 'not looked up',
  };
  const ANALYSIS_LABELS = {
    pending_submissions: 'uploads waiting', messages_waiting: 'messages waiting', submitted: 'submitted',
    already_known: 'already known', waiting: 'waiting for an upload', rejected: 'rejected', analysed: 'analysed',
    completed: 'completed', malicious: 'found malicious', failed: 'failed', expired: 'expired', not_sent: 'not sent',
    quarantine_held: 'held in quarantine',
  };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  let generation = 0;    // bumped at every sign-in and sign-out: late answers of an old session are dropped
  let timer = null;      // the overview's refresh
  let current = '';      // the view shown
  let refreshes = 0;     // overview refreshes completed (data-refreshed, for tests)
  let overviewAsked = 0; // overview refreshes started: an answer to an older one is dropped
  let quarantinePage = '';  // the `after` of the quarantine page shown
  let quarantineNext = '';

  const $ = (id) => document.getElementById(id);

  // --- DOM helpers: text only ---

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) n.setAttribute(k, String(v));
    }
    return append(n, children);
  }

  function svg(tag, attrs, ...children) {
    const n = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    return append(n, children);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function setField(name, value) {
    for (const n of document.querySelectorAll('[data-field="' + name + '"]')) n.textContent = value;
  }

  function say(id, text, ok) {
    const n = $(id);
    n.textContent = text || '';
    n.className = ok ? 'ok' : 'error';
  }

  // --- formats ---

  function count(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : '-';
  }

  function time(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '').replace(/Z$/, '') + ' UTC';
  }

  function hhmm(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    return String(d.getUTCHours()).padStart(2, '0') + ':' + String(d.getUTCMinutes()).padStart(2, '0');
  }

  function bits(b) {
    if (typeof b !== 'number') return '-';
    for (const [unit, scale] of [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]]) {
      if (b >= scale) return (b / scale).toFixed(2) + ' ' + unit;
    }
    return b.toFixed(0) + ' bit/s';
  }

  function duration(s) {
    if (typeof s !== 'number') return '-';
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + m + ' min';
  }

  // Known keys first, in their order, then any the API added.
  function keysOf(obj, known) {
    return known.filter((k) => k in obj).concat(Object.keys(obj).filter((k) => !known.includes(k)));
  }

  // --- the API ---

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
      this.text = (status ? status + ' ' : '') + code + ': ' + message;
    }
  }

  class Stale extends Error {}

  async function api(method, path, body) {
    const mine = generation;
    const headers = { Authorization: 'Bearer ' + (sessionStorage.getItem(TOKEN_KEY) || '') };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new ApiError(0, 'NetworkError', 'the appliance did not answer (' + e.message + ')');
    }
    let j = null;
    try {
      j = await r.json();
    } catch (e) {
      j = null;
    }
    if (mine !== generation) throw new Stale();
    if (r.ok) return j;
    const err = (j && j.error) || {};
    const e = new ApiError(r.status, err.code || 'HTTPError', err.message || r.statusText);
    if (r.status === 401) signOut('The appliance refused the token (' + e.text + ').');
    throw e;
  }

  // Runs a view's loader; its errors go to the view's message line (a sign-out already said why).
  function run(promise, messageId) {
    promise.catch((e) => {
      if (e instanceof Stale || (e instanceof ApiError && e.status === 401)) return;
      say(messageId, e instanceof ApiError ? e.text : String(e));
    });
  }

  // --- signing in and out ---

  async function signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    generation++;
    say('signin-message', 'Signing in...', true);
    let st;
    try {
      st = await api('GET', '/api/v1/status');
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) signOut('Cannot sign in: ' + e.text);
      return;
    }
    say('signin-message', '');
    $('token').value = '';
    $('signin').hidden = true;
    $('tabs').hidden = false;
    $('sign-out').hidden = false;
    $('appliance').textContent = [st.appliance, st.mode, st.version && 'version ' + st.version].filter(Boolean).join(' · ');
    timer = setInterval(() => {
      if (current === 'overview') run(refreshOverview(), 'overview-message');
    }, REFRESH_MS);
    showView('overview');
  }

  // Forgets the token and every value shown.
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    generation++;
    clearInterval(timer);
    timer = null;
    current = '';
    for (const v of document.querySelectorAll('.view')) v.hidden = true;
    for (const n of document.querySelectorAll('.view tbody, .view dl[id], .chart, #trace-result')) clear(n);
    for (const n of document.querySelectorAll('.view [data-field]')) n.textContent = '-';
    for (const n of document.querySelectorAll('.view [id$="-message"]')) n.textContent = '';
    $('files-result').hidden = true;
    $('overview').removeAttribute('data-refreshed');
    $('overview').removeAttribute('data-window');
    refreshes = 0;
    $('appliance').textContent = '';
    $('tabs').hidden = true;
    $('sign-out').hidden = true;
    $('signin').hidden = false;
    say('signin-message', message || '');
    $('token').focus();
  }

  function showView(name) {
    current = name;
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== name;
    for (const t of document.querySelectorAll('#tabs .tab')) t.classList.toggle('active', t.dataset.view === name);
    if (name === 'overview') run(refreshOverview(), 'overview-message');
    if (name === 'quarantine') run(loadQuarantine(quarantinePage), 'quarantine-message');
    if (name === 'alerts') run(loadAlerts(), 'alerts-message');
  }

  // --- overview ---

  async function refreshOverview() {
    const win = $('window').value;
    const mine = ++overviewAsked;
    const [report, endpoints, held] = await Promise.allSettled([
      api('GET', '/api/v1/report?window=' + encodeURIComponent(win)),
      api('GET', '/api/v1/endpoints'),
      api('GET', '/api/v1/quarantine?state=held&limit=1'),
    ]);
    if (mine !== overviewAsked) return;
    const problems = [];
    for (const [what, r] of [['report', report], ['endpoints', endpoints], ['quarantine', held]]) {
      if (r.status === 'rejected') {
        if (r.reason instanceof Stale || (r.reason instanceof ApiError && r.reason.status === 401)) return;
        if (!(what === 'quarantine' && r.reason.status === 503)) {
          problems.push(what + ': ' + (r.reason instanceof ApiError ? r.reason.text : String(r.reason)));
        }
      }
    }
    if (report.status === 'fulfilled') renderReport(report.value);
    if (endpoints.status === 'fulfilled') renderEndpoints(endpoints.value);
    if (held.status === 'fulfilled') setField('quarantine.held', count(held.value.matching));
    else setField('quarantine.held', 'no quarantine');
    say('overview-message', problems.join('; '));
    $('overview-updated').textContent = time(new Date().toISOString());
    $('overview').setAttribute('data-window', win);
    $('overview').setAttribute('data-refreshed', String(++refreshes));
  }

  function totalsList(dl, prefix, values, known) {
    clear(dl);
    let all = 0;
    for (const k of keysOf(values, known)) {
      all += Number(values[k]) || 0;
      append(dl, [el('dt', null, LABELS[k] || k), el('dd', { 'data-field': prefix + k }, count(values[k]))]);
    }
    append(dl, [el('dt', null, 'all'), el('dd', { 'data-field': prefix + 'all' }, count(all))]);
  }

  function renderReport(r) {
    const totals = r.totals || {};
    totalsList($('totals-messages'), 'totals.messages.', totals.messages || {}, MESSAGE_KEYS);
    totalsList($('totals-files'), 'totals.files.', totals.files || {}, FILE_KEYS);
    const tp = r.throughput || {};
    setField('throughput.rx_bits_per_s', bits(tp.rx_bits_per_s));
    setField('throughput.messages_per_s', typeof tp.messages_per_s === 'number' ? tp.messages_per_s.toFixed(2) + ' /s' : '-');
    setField('mode', r.mode || '-');
    setField('uptime', duration(r.uptime_s));
    const series = r.series || [];
    stackedBars($('chart-messages'), series.map((b) => ({ start: b.start, values: b.messages || {} })), MESSAGE_KEYS,
      r.bucket_s, 'messages');
    stackedBars($('chart-files'), series.map((b) => ({ start: b.start, values: b.files || {} })), FILE_KEYS,
      r.bucket_s, 'files');
    renderTopMalicious(r.top_malicious || []);
    renderAnalysis(r.analysis);
  }

  function renderTopMalicious(list) {
    const body = clear($('top-malicious').tBodies[0]);
    if (!list.length) append(body, [el('tr', { class: 'empty' }, el('td', { colspan: 6, class: 'muted' }, 'No malicious file seen.'))]);
    list.forEach((f, i) => {
      const sha = el('a', { href: '#', class: 'mono', 'data-field': 'sha256', title: 'search this file' }, f.sha256);
      sha.addEventListener('click', (ev) => {
        ev.preventDefault();
        $('files-sha256').value = f.sha256;
        showView('files');
        run(searchFile(f.sha256), 'files-message');
      });
      const recent = el('ul', null, (f.recent || []).map((m) =>
        el('li', null, time(m.time), ' ', el('strong', null, m.subject || '(no subject)'), ' from ', m.mail_from || '<>',
          ' ', el('span', { class: 'muted mono' }, m.message_id || '', m.ref ? ' ref ' + m.ref : ''))));
      append(body, [el('tr', { 'data-rank': i, 'data-sha256': f.sha256 },
        el('td', null, sha),
        el('td', { 'data-field': 'threat_name' }, f.threat_name || ''),
        el('td', { 'data-field': 'filenames' }, (f.filenames || []).join(', ')),
        el('td', { class: 'num', 'data-field': 'messages' }, count(f.messages)),
        el('td', { 'data-field': 'last_seen' }, time(f.last_seen)),
        el('td', null, recent))]);
    });
  }

  function renderAnalysis(a) {
    const dl = clear($('analysis'));
    if (!a) {
      append(dl, [el('dt', null, 'analysis'), el('dd', { 'data-field': 'analysis' }, 'not configured')]);
      return;
    }
    for (const k of keysOf(a, Object.keys(ANALYSIS_LABELS))) {
      append(dl, [el('dt', null, ANALYSIS_LABELS[k] || k), el('dd', { 'data-field': 'analysis.' + k }, count(a[k]))]);
    }
  }

  function renderEndpoints(j) {
    const body = clear($('endpoints').tBodies[0]);
    for (const section of ['reputation', 'analysis']) {
      for (const e of j[section] || []) {
        append(body, [el('tr', { 'data-name': e.name, 'data-section': section },
          el('td', null, e.name),
          el('td', null, section + ' / ' + e.kind),
          el('td', { 'data-field': 'reachable', class: e.reachable ? 'ok' : 'error' }, e.reachable ? 'yes' : 'no'),
          el('td', { 'data-field': 'circuit', class: e.circuit === 'closed' ? '' : 'error' }, e.circuit),
          el('td', { class: 'num', 'data-field': 'last_latency_ms' },
            typeof e.last_latency_ms === 'number' ? e.last_latency_ms.toFixed(1) + ' ms' : '-'))]);
      }
    }
    if (!body.rows.length) append(body, [el('tr', { class: 'empty' }, el('td', { colspan: 5, class: 'muted' }, 'No endpoints configured.'))]);
  }

  // A chart of stacked bars, one per time bucket (at most 120: neighbours are added up), with axis
  // labels and a legend. Each bar segment says its key and value in data- attributes and a title.
  function stackedBars(box, series, keys, bucketS, what) {
    clear(box);
    const group = Math.max(1, Math.ceil(series.length / 120));
    const bars = [];
    for (let i = 0; i < series.length; i += group) {
      const values = {};
      for (const k of keys) values[k] = 0;
      for (let j = i; j < Math.min(i + group, series.length); j++) {
        for (const k of keys) values[k] += Number(series[j].values[k]) || 0;
      }
      bars.push({ start: series[i].start, values });
    }
    const W = 720, H = 250, left = 46, right = 10, top = 18, plotH = 160;
    const plotW = W - left - right, base = top + plotH;
    const highest = Math.max(1, ...bars.map((b) => keys.reduce((s, k) => s + b.values[k], 0)));
    const step = Math.pow(10, Math.floor(Math.log10(highest)));
    const yMax = [1, 2, 5, 10].map((m) => m * step).find((v) => v >= highest);
    const minutes = (bucketS || 60) * group / 60;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': what + ' per time bucket',
      'data-bars': bars.length });
    root.appendChild(svg('text', { x: 4, y: 11 }, what + ' per ' + (minutes >= 60 ? minutes / 60 + ' h' : minutes + ' min')));
    for (const v of [0, yMax / 2, yMax]) {
      if (v !== Math.floor(v)) continue;
      const y = base - v / yMax * plotH;
      root.appendChild(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'axis' }));
      root.appendChild(svg('text', { x: left - 4, y: y + 3, 'text-anchor': 'end' }, count(v)));
    }
    const bw = plotW / Math.max(1, bars.length);
    const labelEvery = Math.max(1, Math.ceil(bars.length / 8));
    bars.forEach((b, i) => {
      let y = base;
      for (const k of keys) {
        const v = b.values[k];
        if (!v) continue;
        const h = v / yMax * plotH;
        y -= h;
        root.appendChild(svg('rect', { x: left + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: h,
          class: 'k-' + k, 'data-key': k, 'data-value': v, 'data-start': b.start },
        svg('title', null, hhmm(b.start) + ' UTC, ' + (LABELS[k] || k) + ': ' + count(v))));
      }
      if (i % labelEvery === 0) {
        root.appendChild(svg('text', { x: left + i * bw + bw / 2, y: base + 14, 'text-anchor': 'middle' }, hhmm(b.start)));
      }
    });
    root.appendChild(svg('text', { x: W - right, y: base + 28, 'text-anchor': 'end' }, 'time (UTC)'));
    const legend = svg('g', { class: 'legend' });
    let x = left;
    for (const k of keys) {
      const total = bars.reduce((s, b) => s + b.values[k], 0);
      const label = (LABELS[k] || k) + ' (' + count(total) + ')';
      legend.appendChild(svg('rect', { x, y: H - 22, width: 10, height: 10, class: 'k-' + k }));
      legend.appendChild(svg('text', { x: x + 14, y: H - 13, 'data-key': k, 'data-total': total }, label));
      x += 24 + label.length * 6.2;
    }
    root.appendChild(legend);
    box.appendChild(root);
  }

  // --- quarantine ---

  async function loadQuarantine(after) {
    const q = new URLSearchParams();
    const state = $('quarantine-state').value;
    if (state) q.set('state', state);
    q.set('limit', '50');
    if (after) q.set('after', after);
    const j = await api('GET', '/api/v1/quarantine?' + q.toString());
    quarantinePage = after || '';
    quarantineNext = j.next || '';
    $('quarantine-next').disabled = !quarantineNext;
    setField('quarantine.matching', count(j.matching));
    const body = clear($('quarantine-table').tBodies[0]);
    if (!j.entries.length) append(body, [el('tr', { class: 'empty' }, el('td', { colspan: 8, class: 'muted' }, 'No entries.'))]);
    for (const e of j.entries) {
      const files = el('ul', null, (e.files || []).map((f) =>
        el('li', { title: f.sha256 }, f.filename || '(no name)', ' ', el('span', { class: 'muted' },
          f.reputation + (f.pending ? ', in analysis' : '')))));
      const state = [e.state];
      if (e.state !== 'held') state.push(el('div', { class: 'muted' }, [e.action, e.by, e.why].filter(Boolean).join(' · ')));
      const actions = e.state === 'held'
        ? [el('button', { type: 'button', class: 'release', 'data-id': e.id }, 'Release'), ' ',
          el('button', { type: 'button', class: 'delete danger', 'data-id': e.id }, 'Delete')]
        : [];
      append(body, [el('tr', { 'data-id': e.id, 'data-state': e.state },
        el('td', null, time(e.received)),
        el('td', null, e.mail_from || '<>'),
        el('td', null, (e.rcpt_to || []).join(', ')),
        el('td', { 'data-field': 'subject' }, e.subject || ''),
        el('td', null, files),
        el('td', { 'data-field': 'state' }, state),
        el('td', { class: 'mono' }, e.id),
        el('td', null, actions))]);
    }
  }

  async function changeEntry(id, what) {
    const relay = $('quarantine-relay').checked;
    const question = what === 'release'
      ? 'Release ' + id + (relay ? ' and send it on to the relay?' : ' (record the decision; nothing is sent)?')
      : 'Delete ' + id + '? Its message is removed for good.';
    if (!window.confirm(question)) return;
    const body = what === 'release' ? { relay, why: 'report page' } : { why: 'report page' };
    try {
      const e = await api('POST', '/api/v1/quarantine/' + encodeURIComponent(id) + '/' + what, body);
      say('quarantine-message', id + ': ' + e.state + (e.action ? ' (' + e.action + ')' : ''), true);
    } catch (e) {
      if (e instanceof Stale || (e instanceof ApiError && e.status === 401)) return;
      say('quarantine-message', id + ': ' + (e instanceof ApiError ? e.text : String(e)));
    }
    await loadQuarantine(quarantinePage);
  }

  // --- alerts ---

  async function loadAlerts() {
    const j = await api('GET', '/api/v1/alerts?limit=200&severity=' + encodeURIComponent($('alerts-severity').value));
    say('alerts-message', '');
    setField('alerts.total', count(j.total));
    const body = clear($('alerts-table').tBodies[0]);
    if (!j.alerts.length) append(body, [el('tr', { class: 'empty' }, el('td', { colspan: 5, class: 'muted' }, 'No alerts.'))]);
    for (const a of j.alerts) {
      append(body, [el('tr', { 'data-id': a.id, 'data-type': a.type },
        el('td', null, time(a.timestamp)),
        el('td', { class: 'sev-' + a.severity }, a.severity),
        el('td', { 'data-field': 'type' }, a.type),
        el('td', { 'data-field': 'message' }, a.message || ''),
        el('td', null, a.endpoint || ''))]);
    }
  }

  // --- file search ---

  async function searchFile(text) {
    const sha = text.trim().toLowerCase();
    say('files-message', '');
    if (!/^[0-9a-f]{64}$/.test(sha)) {
      say('files-message', 'A SHA-256 is 64 hex digits.');
      return;
    }
    const [cache, seen] = await Promise.allSettled([
      api('GET', '/api/v1/cache/' + sha),
      api('GET', '/api/v1/sightings/' + sha + '?limit=1000'),
    ]);
    for (const r of [cache, seen]) {
      if (r.status === 'rejected' && (r.reason instanceof Stale || r.reason.status === 401)) return;
    }
    $('files-result').hidden = false;
    const dl = clear($('files-cache'));
    if (cache.status === 'fulfilled') {
      const c = cache.value;
      const rows = [['cached', c.cached ? 'yes' : 'no']];
      for (const k of ['reputation', 'threat_name', 'threat_score', 'source', 'expires']) {
        if (c[k] !== undefined && c[k] !== null && c[k] !== '') rows.push([k.replace('_', ' '), k === 'expires' ? time(c[k]) : c[k]]);
      }
      for (const [k, v] of rows) append(dl, [el('dt', null, k), el('dd', { 'data-field': 'cache.' + k.replace(' ', '_') }, v)]);
    } else {
      append(dl, [el('dt', null, 'cache'), el('dd', null, cache.reason.text || String(cache.reason))]);
    }
    const body = clear($('sightings-table').tBodies[0]);
    let messages = [];
    if (seen.status === 'fulfilled') {
      messages = seen.value.messages || [];
    } else if (seen.reason.status !== 404) {
      say('files-message', 'sightings: ' + (seen.reason.text || String(seen.reason)));
    }
    $('files-not-seen').hidden = messages.length > 0;
    $('sightings-table').hidden = messages.length === 0;
    setField('sightings.count', count(messages.length));
    for (const m of messages) {
      const as = (m.files || []).filter((f) => f.sha256 === sha)
        .map((f) => f.filename + (f.archive_path ? ' in ' + f.archive_path : ''));
      append(body, [el('tr', { 'data-message-id': m.message_id || '' },
        el('td', null, time(m.time)),
        el('td', null, m.mail_from || '<>'),
        el('td', null, (m.rcpt_to || []).join(', ')),
        el('td', null, m.subject || ''),
        el('td', { class: 'mono', 'data-field': 'message_id' }, m.message_id || ''),
        el('td', { 'data-field': 'disposition' }, m.disposition || ''),
        el('td', null, m.action || ''),
        el('td', null, as.join(', ')))]);
    }
  }

  // --- message trace ---

  // The query parameters for what was typed: `kind` chosen, or guessed from its form.
  function traceQuery(kind, text) {
    const q = text.trim();
    const flow = q.match(/^(\d+)\s*[/:,\s]\s*(\d+)$/);
    if (kind === 'auto') {
      if (/^[0-9a-fA-F]{64}$/.test(q)) kind = 'message_sha256';
      else if (flow) kind = 'flow';
      else if (q.includes('@') || q.startsWith('<')) kind = 'message_id';
      else kind = 'ref';
    }
    const p = new URLSearchParams();
    if (kind === 'flow') {
      if (!flow) throw new Error('a flow is its id and transaction: "1234/1"');
      p.set('flow_id', flow[1]);
      p.set('transaction', flow[2]);
    } else {
      p.set(kind, kind === 'message_sha256' ? q.toLowerCase() : q);
    }
    return { kind, params: p };
  }

  async function trace(kind, text) {
    say('trace-message', '');
    const out = clear($('trace-result'));
    let q;
    try {
      q = traceQuery(kind, text);
    } catch (e) {
      say('trace-message', e.message);
      return;
    }
    let j;
    try {
      j = await api('GET', '/api/v1/trace?' + q.params.toString());
    } catch (e) {
      // A Message-ID typed without its angle brackets: try once with them.
      if (e instanceof ApiError && e.status === 404 && q.kind === 'message_id' && !text.trim().startsWith('<')) {
        return trace('message_id', '<' + text.trim() + '>');
      }
      if (e instanceof ApiError && e.status === 404) {
        say('trace-message', 'No message matches (' + e.message + ').');
        return;
      }
      throw e;
    }
    for (const m of j.messages || []) {
      const head = el('dl', null,
        el('dt', null, 'reference'), el('dd', { 'data-field': 'ref' }, m.ref || ''),
        el('dt', null, 'Message-ID'), el('dd', { 'data-field': 'message_id' }, m.message_id || ''),
        el('dt', null, 'subject'), el('dd', { 'data-field': 'subject' }, m.subject || ''),
        el('dt', null, 'flow / transaction'), el('dd', null, m.flow_id + ' / ' + m.transaction),
        el('dt', null, 'message SHA-256'), el('dd', { class: 'mono' }, m.message_sha256 || ''));
      const rows = (m.steps || []).map((s) => el('tr', { 'data-step': s.step },
        el('td', null, time(s.time)), el('td', { class: 'step', 'data-field': 'step' }, s.step),
        el('td', { 'data-field': 'text' }, s.text || '')));
      append(out, [el('div', { class: 'trace-message', 'data-ref': m.ref || '' }, head,
        el('table', { class: 'steps' }, el('thead', null, el('tr', null, el('th', null, 'Time'), el('th', null, 'Step'),
          el('th', null, 'What happened'))), el('tbody', null, rows)))]);
    }
  }

  // --- wiring ---

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      if (token) signIn(token);
    });
    $('sign-out').addEventListener('click', () => signOut('Signed out.'));
    for (const t of document.querySelectorAll('#tabs .tab')) t.addEventListener('click', () => showView(t.dataset.view));
    $('window').addEventListener('change', () => run(refreshOverview(), 'overview-message'));
    $('quarantine-state').addEventListener('change', () => {
      say('quarantine-message', '');
      run(loadQuarantine(''), 'quarantine-message');
    });
    $('quarantine-first').addEventListener('click', () => run(loadQuarantine(''), 'quarantine-message'));
    $('quarantine-next').addEventListener('click', () => run(loadQuarantine(quarantineNext), 'quarantine-message'));
    $('quarantine-table').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-id]');
      if (b) run(changeEntry(b.dataset.id, b.classList.contains('release') ? 'release' : 'delete'), 'quarantine-message');
    });
    $('alerts-severity').addEventListener('change', () => run(loadAlerts(), 'alerts-message'));
    $('files-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      run(searchFile($('files-sha256').value), 'files-message');
    });
    $('trace-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      run(trace($('trace-kind').value, $('trace-query').value), 'trace-message');
    });
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) signIn(token);
    else signOut('');
  });
})();
