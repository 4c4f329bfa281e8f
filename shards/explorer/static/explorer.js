// soundry explorer: filter, search and sort the clip table rendered in index.html.
// Without JavaScript the page shows the whole table; this only narrows and orders it.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("clip-table");
  if (!form || !table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var shown = document.getElementById("shown");
  form.hidden = false;

  function apply() {
    var f = form.elements;
    var q = f.q.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var d = row.dataset;
      var keep = (!f.split.value || d.split === f.split.value) &&
        (!f.label.value || d.labels.indexOf("|" + f.label.value + "|") >= 0) &&
        (!f.source.value || d.source === f.source.value) &&
        (!f.license.value || d.license === f.license.value) &&
        (!q || d.text.indexOf(q) >= 0);
      row.hidden = !keep;
      if (keep) count += 1;
    });
    shown.textContent = count + " of " + rows.length + " clips shown";
  }

  form.addEventListener("input", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });

  // Sortable headers become buttons (keyboard: Tab to one, Enter or Space sorts).
  Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-sort]"), function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var key = th.dataset.sort;
      var descending = th.getAttribute("aria-sort") !== "descending";
      Array.prototype.forEach.call(table.tHead.querySelectorAll("th"), function (other) {
        other.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var value = function (row) {
        var v = parseFloat(row.dataset[key]);
        return isNaN(v) ? -Infinity : v;
      };
      rows.sort(function (a, b) { return descending ? value(b) - value(a) : value(a) - value(b); });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  apply();
})();
