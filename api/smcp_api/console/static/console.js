// smcp console: the job log grows live from the job's event stream (EventSource; the browser resumes with
// Last-Event-ID after a dropped connection). No other script: the rest is htmx attributes in the pages.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var log = document.getElementById("job-log");
  if (!log || !window.EventSource) { return; }
  var state = document.getElementById("log-state");
  var source = new EventSource(log.dataset.stream);
  var say = function (text) { if (state) { state.textContent = text; } };
  var append = function (text) {
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.appendChild(document.createTextNode(text + "\n"));  // text only: never parsed as HTML
    if (atBottom) { log.scrollTop = log.scrollHeight; }
  };
  source.onopen = function () { say("Live: new output appears as the job runs."); };
  // Per-host counts as the events arrive (the job's own per-host summary replaces them when it ends).
  var tally = document.getElementById("live-hosts");
  var counts = {};
  var kinds = {runner_on_ok: "ok", runner_on_failed: "failed", runner_on_unreachable: "unreachable",
    runner_on_skipped: "skipped"};
  var count = function (data) {
    var kind = kinds[data.event];
    if (!tally || !kind || !data.host) { return; }
    var row = counts[data.host];
    if (!row) {
      row = counts[data.host] = {ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0, tr: document.createElement("tr")};
      tally.querySelector("tbody").appendChild(row.tr);
      tally.hidden = false;
    }
    var res = (data.data && data.data.res) || data.data || {};
    row[kind] += 1;
    if (kind === "ok" && res.changed === true) { row.changed += 1; }
    row.tr.textContent = "";
    [data.host, row.ok, row.changed, row.failed, row.unreachable, row.skipped].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = String(v);
      row.tr.appendChild(td);
    });
  };
  source.onmessage = function (e) {
    try {
      var data = JSON.parse(e.data);
      if (data.stdout) { append(data.stdout); }
      count(data);
    } catch (err) { /* a malformed message: skip it */ }
  };
  source.addEventListener("end", function (e) {
    source.close();
    var end = {};
    try { end = JSON.parse(e.data); } catch (err) { end = {}; }
    say("The job ended: " + (end.status || "finished") + (end.status_reason ? " (" + end.status_reason + ")" : ""));
    if (window.htmx) { htmx.ajax("GET", log.dataset.stream.replace(/\/stream$/, "/progress"), {target: "#progress", swap: "outerHTML"}); }
  });
  source.onerror = function () { say("Connection lost; reconnecting…"); };
});
