// harmtrace trace viewer: client-side filtering of the trace index. No network, no eval,
// no HTML built from data: rows are only shown or hidden, and counts set as text.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("traces");
  if (!form || !table) { return; }
  form.hidden = false;
  var status = document.getElementById("filter-status");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var fields = {
    q: form.elements.q, dataset: form.elements.dataset, category: form.elements.category,
    action: form.elements.action, transition: form.elements.transition
  };

  function apply() {
    var q = fields.q.value.trim().toLowerCase();
    var ds = fields.dataset.value, cat = fields.category.value;
    var act = fields.action.value, tr = fields.transition.value;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var ok = (!ds || r.dataset.dataset === ds) &&
        (!cat || r.dataset.categories.split(" ").indexOf(cat) >= 0) &&
        (!act || r.dataset.action === act) &&
        (!tr || r.dataset.transition === tr) &&
        (!q || texts[i].indexOf(q) >= 0);
      r.hidden = !ok;
      if (ok) { shown++; }
    }
    status.textContent = shown === rows.length
      ? "Showing all " + rows.length + " traces."
      : "Showing " + shown + " of " + rows.length + " traces.";
  }

  // filters can be preset from the address, e.g. index.html?action=block&dataset=x
  var params = new URLSearchParams(window.location.search);
  Object.keys(fields).forEach(function (name) {
    var v = params.get(name);
    if (v !== null) { fields[name].value = v; }
  });
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  apply();
}());
