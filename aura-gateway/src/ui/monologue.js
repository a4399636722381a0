// The inspector's one script: the live monologue. Lines arrive over server-sent events
// from /ui/events (the session cookie authenticates it) and are added as text only,
// never as markup: a model's words are hostile by assumption.
"use strict";
(function () {
  const status = document.getElementById("status");
  const body = document.querySelector("#monologue tbody");
  if (!status || !body) return;
  const component = status.dataset.component || "";
  const url = "/ui/events" + (component ? "?component=" + encodeURIComponent(component) : "");
  const source = new EventSource(url);
  const MAX_ROWS = 500;
  const cell = (row, text) => { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); };
  source.addEventListener("open", () => { status.textContent = "Connected: new lines appear at the top."; });
  source.addEventListener("error", () => { status.textContent = "Disconnected; retrying…"; });
  source.addEventListener("lagged", (e) => {
    const missed = JSON.parse(e.data).missed;
    status.textContent = "This page fell behind and missed " + missed + " lines.";
  });
  source.addEventListener("monologue", (e) => {
    const line = JSON.parse(e.data);
    const row = document.createElement("tr");
    row.className = "line";
    cell(row, String(line.seq));
    cell(row, String(line.at || ""));
    cell(row, String(line.level || ""));
    cell(row, String(line.component || ""));
    const fields = line.fields && Object.keys(line.fields).length ? " " + JSON.stringify(line.fields) : "";
    cell(row, String(line.message || "") + fields);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  });
})();
