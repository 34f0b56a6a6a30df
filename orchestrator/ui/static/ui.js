// Segue operations page: the token, control buttons, live panels and the event log.
// No framework and nothing fetched from elsewhere: it ships with the package.
(function () {
  "use strict";
  var KEY = "segue-ui-token";

  // A `?token=` in the address is kept for this tab and taken out of the address bar.
  var params = new URLSearchParams(location.search);
  if (params.get("token")) {
    sessionStorage.setItem(KEY, params.get("token"));
    params.delete("token");
    var rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  function token() { return sessionStorage.getItem(KEY); }

  function toast(text, error) {
    var el = document.getElementById("toast");
    el.textContent = text;
    el.className = "toast" + (error ? " error" : "");
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 3500);
  }

  // Controls: a POST with the token in a header (a cookie never steers).
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    if (!token()) {
      document.getElementById("token-note").hidden = false;
      toast("This action needs the page's token: open the address `segue ui` printed.", true);
      return;
    }
    button.disabled = true;
    fetch(button.dataset.action, { method: "POST", headers: { "X-Segue-Token": token() } })
      .then(function (r) { return r.json().then(function (body) { return [r, body]; }); })
      .then(function (pair) {
        if (!pair[0].ok) throw new Error(pair[1].error || pair[0].statusText);
        toast(button.textContent.trim() + ": requested");
        refresh();
      })
      .catch(function (err) { toast(err.message, true); button.disabled = false; });
  });

  var root = document.getElementById("job");
  if (!root) return;
  var job = root.dataset.job;

  // Panels: re-read as HTML from the server, keeping open tracebacks open and the
  // logs card on the node picked in it.
  var pending = false, last = 0, logNode = "", seq = 0;
  document.addEventListener("change", function (e) {
    if (!e.target.matches("select[data-logs-node]")) return;
    logNode = e.target.value;
    pending = false;  // an answer for the node picked before is dropped (seq)
    refresh();
  });
  function refresh() {
    if (pending) return;
    pending = true;
    last = Date.now();
    var mine = ++seq;
    var url = "/jobs/" + encodeURIComponent(job) + "/panels" + (logNode ? "?node=" + encodeURIComponent(logNode) : "");
    fetch(url, { headers: { "X-Segue-Token": token() || "" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || mine !== seq) return;
        var panels = document.getElementById("panels");
        var open = Array.prototype.map.call(panels.querySelectorAll("details[open]"),
          function (d) { return d.dataset.key; });
        panels.innerHTML = html;
        open.forEach(function (key) {
          var d = panels.querySelector('details[data-key="' + CSS.escape(key) + '"]');
          if (d) d.open = true;
        });
      })
      .finally(function () { if (mine === seq) pending = false; });
  }
  function soon() { if (Date.now() - last > 700) refresh(); }
  var timer = setInterval(refresh, 1500);

  // The event log, live from the server-sent events (resumed by Last-Event-ID).
  var log = document.getElementById("log");
  var state = document.getElementById("stream-state");
  function time(at) { return new Date(at * 1000).toLocaleTimeString([], { hour12: false }); }
  function describe(ev) {
    var where = [ev.loop && ev.loop !== "main" ? ev.loop : null,
      ev.iteration !== null && ev.iteration !== undefined ? "#" + ev.iteration : null,
      ev.node].filter(Boolean).join(" ");
    var text = (where ? where + " " : "") + (ev.status || "");
    if (ev.kind === "progress" && ev.data) text += " " + Math.round((ev.data.fraction || 0) * 100) + "% " + (ev.data.message || "");
    if (ev.kind === "preview" && ev.data) text += " " + JSON.stringify(ev.data.value !== undefined ? ev.data.value : ev.data);
    if (ev.kind === "loop" && ev.data && ev.data.iterations !== undefined) {
      text += " · " + ev.data.iterations + " iterations";
      if (ev.data.failed_iterations) text += ", " + ev.data.failed_iterations + " failed";
    }
    if (ev.data && ev.data.error) text += " - " + ev.data.error;
    return text;
  }
  function add(ev) {
    var li = document.createElement("li");
    li.innerHTML = '<span class="t"></span><span class="k"></span><span class="m"></span>';
    li.children[0].textContent = time(ev.at);
    li.children[1].textContent = ev.kind;
    li.children[2].textContent = describe(ev);
    li.children[2].className = "m ev-" + (ev.status || ev.kind);
    var follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.appendChild(li);
    while (log.children.length > 400) log.removeChild(log.firstChild);
    if (follow) log.scrollTop = log.scrollHeight;
  }
  var source = new EventSource("/jobs/" + encodeURIComponent(job) + "/events");
  source.addEventListener("open", function () { state.textContent = "live"; });
  source.addEventListener("job", function (m) { add(JSON.parse(m.data)); soon(); });
  source.addEventListener("end", function () {
    source.close();
    state.textContent = "job ended";
    refresh();
    clearInterval(timer);
  });
  source.addEventListener("error", function () { state.textContent = "reconnecting…"; });
})();
