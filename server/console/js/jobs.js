// Jobs and applications: a SQL editor that submits a script (POST
// /v1/jobs; a refusal is marked at its line and column), the jobs and
// the Kinesis Analytics applications; a job's page (GET /v1/jobs/ID once
// a second) with its plan, sources, sinks, state and checkpoints, and a
// bare SELECT's rows as they arrive (results.js).

import { analytics, del, get, post } from './api.js';
import { endOf, planGraph, rowsLine } from './plan.js';
import { liveResults } from './results.js';
import {
  formatBytes, formatDuration, formatNumber, formatTime, h, message, num, pill, poll, replaceIfChanged, showError, table,
} from './ui.js';

const EXAMPLE = `-- A bare SELECT: its rows show on the job's page as they arrive.
CREATE TABLE readings (
  id BIGINT,
  celsius DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '5',
  'fields.celsius.min' = '-10',
  'fields.celsius.max' = '40'
);
SELECT id, celsius, ts FROM readings;
`;

/** A textarea with line numbers; `mark(line, column)` shows where the
 * planner found a problem. */
function sqlEditor() {
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const area = h('textarea', { name: 'sql', spellcheck: 'false', rows: 14, 'aria-label': 'SQL script' });
  area.value = EXAMPLE;
  let bad = null;
  function number() {
    const count = area.value.split('\n').length;
    gutter.replaceChildren(...Array.from({ length: count }, (_, i) => h('div', { class: i + 1 === bad ? 'bad' : null }, String(i + 1))));
    gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener('input', () => {
    bad = null;
    number();
  });
  area.addEventListener('scroll', () => {
    gutter.scrollTop = area.scrollTop;
  });
  number();
  return {
    element: h('div', { class: 'editor' }, gutter, area),
    area,
    mark(line, column) {
      bad = line;
      number();
      const lines = area.value.split('\n');
      const at = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0) + Math.max(0, column - 1);
      area.focus();
      area.setSelectionRange(at, Math.min(area.value.length, at + 1));
      const height = parseFloat(getComputedStyle(area).lineHeight) || 19;
      area.scrollTop = Math.max(0, (line - 3) * height);
    },
  };
}

const jobLink = (job) => h('a', { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name);

export function list(main) {
  const editor = sqlEditor();
  const name = h('input', { name: 'job-name', placeholder: 'optional' });
  const problem = h('div', { id: 'submit-problem' });
  const submit = h('button', { type: 'submit' }, 'Submit job');
  const form = h('form', {
    id: 'submit-job',
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      problem.replaceChildren();
      try {
        const request = { sql: editor.area.value };
        if (name.value.trim()) request.name = name.value.trim();
        const job = await post('/v1/jobs', request);
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
      } catch (error) {
        const where = error.body && error.body.line ? `Line ${error.body.line}, column ${error.body.column}: ` : '';
        problem.replaceChildren(h('p', { class: 'error' }, where + (error.body?.message || message(error))));
        if (error.body && error.body.line) editor.mark(error.body.line, error.body.column || 1);
      } finally {
        submit.disabled = false;
      }
    },
  }, editor.element, h('div', { class: 'row' }, h('label', {}, 'Name', name), submit), problem);
  const jobs = h('div', { id: 'jobs' });
  const applications = h('div');
  main.append(
    h('h1', {}, 'Jobs and applications'),
    h('div', { class: 'panel' }, h('h2', {}, 'New job'), form),
    h('h2', {}, 'Jobs'), jobs,
    h('h2', {}, 'Applications'), applications,
  );
  let names = new Map();
  let tick = 0;
  const poller = poll(async () => {
    try {
      const out = await get('/v1/jobs');
      const listed = [...out.jobs].sort((a, b) => String(b.created).localeCompare(String(a.created)));
      names = new Map(listed.map((job) => [job.name, job]));
      jobs.replaceChildren(table(['Name', 'Status', 'Created', 'Started', 'Ended', 'Error'], listed.map((job) => [
        jobLink(job), pill(job.status), formatTime(job.created), formatTime(job.started), formatTime(job.ended),
        h('td', { class: 'error' }, job.error || ''),
      ]), 'No jobs yet.'));
    } catch (error) {
      showError(jobs, error);
    }
    // Applications change only when someone creates or starts one.
    if (tick++ % 5 !== 0) return;
    try {
      const out = await analytics('ListApplications', { Limit: 50 });
      applications.replaceChildren(table(['Name', 'Status', 'Runtime', 'Job'], (out.ApplicationSummaries || []).map((app) => [
        app.ApplicationName, pill(app.ApplicationStatus), app.RuntimeEnvironment || '',
        names.has(app.ApplicationName) ? jobLink(names.get(app.ApplicationName)) : '–',
      ]), 'No applications.'));
    } catch (error) {
      showError(applications, error);
    }
  });
  return { stop: poller.stop };
}

// ------------------------------------------------------------ one job

function lag(source) {
  const behind = (source.shards || []).map((shard) => shard.millis_behind_latest).filter((v) => v !== null && v !== undefined);
  return behind.length ? Math.max(...behind) : null;
}

function checkpoints(slot, value) {
  if (!value) {
    slot.replaceChildren(h('p', { class: 'muted' }, "Checkpointing is off (SET 'execution.checkpointing.interval' turns it on)."));
    return;
  }
  slot.replaceChildren(
    h('dl', { class: 'facts' },
      h('dt', {}, 'Interval'), h('dd', {}, formatDuration(value.interval_ms)),
      h('dt', {}, 'Mode'), h('dd', {}, value.mode),
      h('dt', {}, 'Restored from'), h('dd', {}, value.restored_from === null || value.restored_from === undefined ? '–' : String(value.restored_from)),
      h('dt', {}, 'Failed'), h('dd', { class: value.failed ? 'bad' : '' }, `${value.failed}${value.last_failure ? `: ${value.last_failure}` : ''}`)),
    table(['Checkpoint#', 'Taken', 'Duration#', 'Size#', 'States#'], value.completed.map((c) => [
      num(c.id), formatTime(c.time), h('td', { class: 'num' }, formatDuration(c.duration_ms)),
      h('td', { class: 'num' }, formatBytes(c.bytes)), num(c.states),
    ]), 'None completed yet.'),
  );
}

export function detail(main, id) {
  const title = h('h1', {}, id);
  const problem = h('div');
  const actions = h('div', { class: 'row' });
  const facts = h('dl', { class: 'facts' });
  const figures = h('div', { class: 'grid' });
  const plan = h('div', { class: 'panel', id: 'plan' });
  const sources = h('div');
  const sinks = h('div');
  const checkpointSlot = h('div', { class: 'panel' });
  const sql = h('pre', { class: 'mono' });
  const resultsSection = h('section', { id: 'results', hidden: true });
  main.append(
    h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
    title, problem, actions,
    h('div', { class: 'panel' }, facts, figures),
    resultsSection,
    h('h2', {}, 'Plan'), plan,
    h('h2', {}, 'Sources'), sources,
    h('h2', {}, 'Sinks'), sinks,
    h('h2', {}, 'Checkpoints'), checkpointSlot,
    h('details', {}, h('summary', {}, 'SQL'), sql),
  );
  let before = null;
  let results = null;
  const act = (label, run) => h('button', {
    class: 'secondary',
    onclick: async () => {
      try {
        await run();
        poller.now();
      } catch (error) {
        showError(problem, error);
      }
    },
  }, label);

  const poller = poll(async () => {
    let job;
    try {
      job = await get(`/v1/jobs/${encodeURIComponent(id)}`);
      showError(problem, null);
    } catch (error) {
      showError(problem, error);
      return;
    }
    const now = Date.now();
    const seconds = before ? (now - before.at) / 1000 : null;
    const rate = (current, earlier) => (seconds && earlier !== undefined ? Math.max(0, (current - earlier) / seconds) : null);
    const sourceRate = new Map(job.sources.map((source) => [source.table,
      rate(source.rows_read, before?.job.sources.find((b) => b.table === source.table)?.rows_read)]));
    const sinkRate = new Map(job.sinks.map((sink) => [sink.table,
      rate(sink.rows_written, before?.job.sinks.find((b) => b.table === sink.table)?.rows_written)]));

    title.replaceChildren(job.name, ' ', pill(job.status));
    replaceIfChanged(actions, job.status, () => (job.status === 'RUNNING' || job.status === 'RESTARTING'
      ? [act('Stop', () => post(`/v1/jobs/${encodeURIComponent(id)}/stop`, {}))]
      : [act('Delete', async () => {
        await del(`/v1/jobs/${encodeURIComponent(id)}`);
        location.hash = '#/jobs';
      })]));
    replaceIfChanged(facts, JSON.stringify([job.status, job.error, job.started, job.ended, job.restarts]), () => [
      h('dt', {}, 'Id'), h('dd', { class: 'mono' }, job.id),
      h('dt', {}, 'Parallelism'), h('dd', {}, String(job.parallelism)),
      h('dt', {}, 'Started'), h('dd', {}, formatTime(job.started)),
      h('dt', {}, 'Ended'), h('dd', {}, formatTime(job.ended)),
      h('dt', {}, 'Restarts'), h('dd', {}, String(job.restarts)),
      job.error ? [h('dt', {}, 'Error'), h('dd', { class: 'error' }, job.error)] : [],
    ]);
    const figure = (value, unit) => h('div', { class: 'figure' }, value, h('small', {}, unit));
    figures.replaceChildren(
      figure(formatNumber(rate(job.rows_in, before?.job.rows_in), 1), 'rows/s in'),
      figure(formatNumber(rate(job.rows_out, before?.job.rows_out), 1), 'rows/s out'),
      figure(formatNumber(job.state_rows), 'rows of state'),
      figure(formatNumber(job.late_rows), 'late rows dropped'),
    );
    plan.replaceChildren(job.plan ? planGraph(job.plan, (label) => {
      const end = endOf(label);
      if (!end) return '';
      if (end.kind === 'source') {
        const source = job.sources.find((x) => x.table === end.table);
        return source ? rowsLine(source.rows_read, sourceRate.get(end.table)) : '';
      }
      const sink = job.sinks.find((x) => x.table === end.table);
      return sink ? rowsLine(sink.rows_written, sinkRate.get(end.table)) : '';
    }) : h('p', { class: 'muted' }, 'No plan: the job is not running.'));
    sources.replaceChildren(table(['Table', 'Rows read#', 'Rows/s#', 'Watermark', 'Lag#', 'Shards'], job.sources.map((source) => [
      source.table, num(source.rows_read), num(sourceRate.get(source.table)), formatTime(source.watermark),
      h('td', { class: 'num' }, formatDuration(lag(source))),
      source.shards ? h('details', {}, h('summary', {}, `${source.shards.length}`),
        table(['Shard', 'Position', 'Behind#'], source.shards.map((shard) => [
          h('td', { class: 'mono' }, shard.shard_id), h('td', { class: 'mono' }, shard.sequence_number || '–'),
          h('td', { class: 'num' }, shard.finished ? 'done' : formatDuration(shard.millis_behind_latest)),
        ]))) : '–',
    ]), 'No sources (the job is not running).'));
    sinks.replaceChildren(table(['Table', 'Rows written#', 'Rows/s#', 'Watermark'], job.sinks.map((sink) => [
      sink.table, num(sink.rows_written), num(sinkRate.get(sink.table)), formatTime(sink.watermark),
    ])));
    checkpoints(checkpointSlot, job.checkpoints);
    sql.textContent = job.sql;
    if (!results && job.columns && job.columns.length && job.status === 'RUNNING') {
      results = liveResults(resultsSection, id, job.columns);
    }
    before = { job, at: now };
  });
  return {
    stop() {
      poller.stop();
      results?.stop();
    },
  };
}
