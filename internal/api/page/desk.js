// feederd service desk: follow the live stream, re-fetch the board when
// something changed, tick the durations. No framework, no build step.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var board = document.getElementById("board");
  var pending = false, inflight = false;

  function fmt(sec) {
    sec = Math.max(0, Math.floor(sec));
    var h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h > 0) return h + "h " + pad(m) + "m " + pad(s) + "s";
    if (m > 0) return m + "m " + pad(s) + "s";
    return s + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".ticking[data-start]").forEach(function (el) {
      el.textContent = fmt((now - Date.parse(el.dataset.start)) / 1000);
    });
  }
  // refresh replaces the board, keeping what an agent is typing.
  function refresh() {
    if (inflight) { pending = true; return; }
    var active = document.activeElement;
    if (active && active.form && board.contains(active) && active.value) { pending = true; setTimeout(refresh, 1000); return; }
    inflight = true;
    fetch("/board", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("board: " + r.status);
      return r.text();
    }).then(function (html) {
      board.innerHTML = html;
      tick();
      board.dataset.refreshed = String((Number(board.dataset.refreshed) || 0) + 1);
    }).catch(function (e) {
      live.textContent = "board not refreshed: " + e.message;
    }).finally(function () {
      inflight = false;
      if (pending) { pending = false; refresh(); }
    });
  }
  var timer = null;
  function soon() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 100);
  }
  function connect() {
    // EventSource reconnects by itself and sends Last-Event-ID, so the
    // server replays what the page missed.
    var es = new EventSource("/api/v1/stream");
    es.onopen = function () { live.dataset.state = "live"; live.textContent = "live"; };
    es.onerror = function () { live.dataset.state = "lost"; live.textContent = "stream lost, reconnecting…"; };
    ["outage", "state", "note", "reset"].forEach(function (t) { es.addEventListener(t, soon); });
    es.addEventListener("event", function (e) {
      var ev = JSON.parse(e.data);
      if (ev.kind !== "band") soon();
    });
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      if (r.ok) return;
      return r.json().then(function (j) { throw new Error(j.error || r.status); });
    });
  }
  board.addEventListener("submit", function (e) {
    var f = e.target, id = encodeURIComponent(f.dataset.outageId);
    e.preventDefault();
    var p;
    if (f.classList.contains("etr-form")) {
      p = post("/api/v1/outages/" + id + "/etr", { etr: new Date(f.etr.value + "Z").toISOString().replace(/\.\d+Z$/, "Z") });
    } else if (f.classList.contains("ack-form")) {
      p = post("/api/v1/outages/" + id + "/ack", { by: f.by.value });
    }
    if (p) p.then(function () { f.reset(); refresh(); }, function (err) { alert("Not saved: " + err.message); });
  });
  setInterval(tick, 1000);
  setInterval(refresh, 15000);
  tick();
  connect();
})();
