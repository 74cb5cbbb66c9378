/* The segment rule builder: rows of field / operator / value in and/or groups, with "not".
 * Plain JavaScript, no build step and no library. The rules live in the form's JSON textarea
 * (the "JSON view"); the builder reads it, and writes it back on every change. The live member
 * count comes from POST /api/v1/segments/preview (session auth, CSRF header). */
(function () {
  "use strict";

  var OP_LABELS = {
    eq: "is", neq: "is not", "in": "is one of", not_in: "is none of", contains: "contains",
    starts_with: "starts with", is_set: "is set", is_not_set: "is not set", gt: ">", gte: "≥", lt: "<",
    lte: "≤", before: "before", after: "after", within_last_days: "in the last … days",
    contains_any: "has any of", contains_all: "has all of", contains_none: "has none of"
  };
  var LIST_OPS = ["in", "not_in", "contains_any", "contains_all", "contains_none"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (k === "className") { node.className = attrs[k]; }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) { return input.value; }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function Builder(root) {
    this.root = root;
    this.textarea = document.getElementById(root.dataset.textarea);
    this.jsonBox = root.nextElementSibling;
    var vocab = JSON.parse(document.getElementById(root.dataset.textarea + "-vocabulary").textContent);
    this.fields = {};
    this.fieldOrder = vocab.fields;
    var self = this;
    vocab.fields.forEach(function (f) { self.fields[f.name] = f; });
    this.noValueOps = vocab.no_value_ops;
    this.previewUrl = root.dataset.previewUrl;
    this.tree = root.querySelector(".rb-tree");
    this.error = root.querySelector(".rb-error");
    this.countValue = root.querySelector(".rb-count-value");
    this.timer = null;
    this.requestNumber = 0;
    root.querySelector(".rb-toggle-json").addEventListener("click", function () { self.toggleJson(this); });
    this.textarea.addEventListener("input", function () { self.scheduleCount(); });
    this.load();
  }

  Builder.prototype.load = function () {
    var rules;
    try {
      rules = JSON.parse(this.textarea.value || '{"op": "and", "rules": []}');
    } catch (e) {
      this.showError("The JSON does not parse (" + e.message + "): fix it in the JSON view.");
      this.toggleJson(this.root.querySelector(".rb-toggle-json"), true);
      return false;
    }
    if (!rules || rules.op === undefined && rules.not === undefined && rules.field === undefined) {
      rules = {op: "and", rules: []};
    }
    if (rules.field !== undefined || rules.not !== undefined) { rules = {op: "and", rules: [rules]}; }
    this.tree.innerHTML = "";
    this.tree.appendChild(this.renderGroup(rules, false, true));
    this.hideError();
    this.scheduleCount();
    return true;
  };

  Builder.prototype.toggleJson = function (button, forceJson) {
    var showingJson = !this.jsonBox.hidden;
    if (showingJson && !forceJson) {
      if (!this.load()) { return; }
      this.jsonBox.hidden = true;
      this.tree.hidden = false;
      button.textContent = "JSON view";
    } else {
      this.jsonBox.hidden = false;
      this.tree.hidden = true;
      button.textContent = "Back to the builder";
    }
  };

  Builder.prototype.changed = function () {
    var rules = this.serializeGroup(this.tree.firstChild);
    this.textarea.value = JSON.stringify(rules, null, 2);
    this.scheduleCount();
  };

  Builder.prototype.notBox = function (checked) {
    var box = el("input", {type: "checkbox", className: "rb-not"});
    box.checked = !!checked;
    var self = this;
    box.addEventListener("change", function () { self.changed(); });
    return el("label", {className: "rb-not-label", title: "Match the contacts this does NOT match"}, [box, document.createTextNode(" not")]);
  };

  Builder.prototype.renderNode = function (node) {
    var negated = false;
    while (node && node.not !== undefined) { negated = !negated; node = node.not; }
    return node && node.op !== undefined ? this.renderGroup(node, negated, false) : this.renderCondition(node || {}, negated);
  };

  Builder.prototype.renderGroup = function (group, negated, isRoot) {
    var self = this;
    var op = el("select", {className: "rb-op", "aria-label": "combine with"});
    [["and", "all of these (and)"], ["or", "any of these (or)"]].forEach(function (o) {
      op.appendChild(el("option", {value: o[0], text: o[1]}));
    });
    op.value = group.op === "or" ? "or" : "and";
    op.addEventListener("change", function () { self.changed(); });
    var children = el("div", {className: "rb-children"});
    (group.rules || []).forEach(function (child) { children.appendChild(self.renderNode(child)); });
    var addCondition = el("button", {type: "button", className: "button rb-add-condition", text: "+ condition"});
    addCondition.addEventListener("click", function () {
      children.appendChild(self.renderCondition({}, false)); self.changed();
    });
    var addGroup = el("button", {type: "button", className: "button rb-add-group", text: "+ group"});
    addGroup.addEventListener("click", function () {
      children.appendChild(self.renderGroup({op: "or", rules: [{}]}, false, false)); self.changed();
    });
    var head = el("div", {className: "rb-group-head"}, [
      isRoot ? null : this.notBox(negated), el("span", {text: "Contacts matching "}), op]);
    var box = el("div", {className: "rb-group" + (isRoot ? " rb-root" : "")}, [head, children,
      el("div", {className: "rb-group-actions"}, [addCondition, addGroup, isRoot ? null : this.removeButton()])]);
    box.dataset.kind = "group";
    return box;
  };

  Builder.prototype.removeButton = function () {
    var self = this;
    var button = el("button", {type: "button", className: "button rb-remove", title: "Remove", text: "×"});
    button.addEventListener("click", function () {
      var node = button.closest(".rb-condition, .rb-group");
      node.parentNode.removeChild(node);
      self.changed();
    });
    return button;
  };

  Builder.prototype.renderCondition = function (cond, negated) {
    var self = this;
    var field = el("select", {className: "rb-field", "aria-label": "field"});
    field.appendChild(el("option", {value: "", text: "— field —"}));
    var groups = {};
    this.fieldOrder.forEach(function (f) {
      var area = f.kind === "channel" ? "Channels" : f.kind === "custom" ? "Custom fields" : "Contact";
      if (!groups[area]) { groups[area] = el("optgroup", {label: area}); field.appendChild(groups[area]); }
      groups[area].appendChild(el("option", {value: f.name, text: f.label || f.name.replace(/_/g, " ")}));
    });
    if (cond.field && !this.fields[cond.field]) {
      field.appendChild(el("option", {value: cond.field, text: cond.field}));
    }
    field.value = cond.field || "";
    var operator = el("select", {className: "rb-operator", "aria-label": "operator"});
    var valueBox = el("span", {className: "rb-value-box"});
    var row = el("div", {className: "rb-condition"}, [this.notBox(negated), field, operator, valueBox, this.removeButton()]);
    row.dataset.kind = "condition";

    function fillOperators(selected) {
      var spec = self.fields[field.value];
      operator.innerHTML = "";
      (spec ? spec.ops : []).forEach(function (o) { operator.appendChild(el("option", {value: o, text: OP_LABELS[o] || o})); });
      if (selected && spec && spec.ops.indexOf(selected) >= 0) { operator.value = selected; }
    }
    function fillValue(value) {
      valueBox.innerHTML = "";
      valueBox.appendChild(self.valueInput(self.fields[field.value], operator.value, value));
    }
    field.addEventListener("change", function () { fillOperators(); fillValue(); self.changed(); });
    operator.addEventListener("change", function () {
      var input = valueBox.querySelector(".rb-value");
      fillValue(input ? self.readValue(input) : undefined); self.changed();
    });
    fillOperators(cond.operator);
    fillValue(cond.value);
    return row;
  };

  Builder.prototype.valueInput = function (spec, op, value) {
    var self = this;
    var input;
    if (!spec || this.noValueOps.indexOf(op) >= 0) { return el("span"); }
    var type = spec.kind === "custom" ? spec.type : spec.kind;
    if (LIST_OPS.indexOf(op) >= 0) {
      input = el("input", {type: "text", className: "rb-value vTextField", placeholder: spec.kind === "lists" ? "list ids, comma-separated" : "comma-separated"});
      input.value = Array.isArray(value) ? value.join(", ") : (value === undefined || value === null ? "" : String(value));
      input.dataset.list = spec.kind === "lists" ? "numbers" : "text";
    } else if (type === "bool" || type === "channel" || type === "boolean" || type === "textable") {
      input = el("select", {className: "rb-value"});
      var options = [["true", type === "channel" ? "opted in" : "true"], ["false", type === "channel" ? "opted out" : "false"]];
      if (type === "textable") { options.push(["unknown", "unknown"]); }
      options.forEach(function (o) { input.appendChild(el("option", {value: o[0], text: o[1]})); });
      input.value = value === undefined || value === null ? "true" : String(value);
      input.dataset.type = "bool";
    } else if (op === "within_last_days" || type === "number") {
      input = el("input", {type: "number", className: "rb-value", step: "any", min: op === "within_last_days" ? "1" : ""});
      input.value = value === undefined || value === null ? "" : value;
      input.dataset.type = "number";
    } else if (type === "datetime" || type === "date") {
      input = el("input", {type: "date", className: "rb-value"});
      input.value = typeof value === "string" ? value.slice(0, 10) : "";
    } else if (type === "choice" && (op === "eq" || op === "neq")) {
      input = el("select", {className: "rb-value"});
      (spec.choices || []).forEach(function (c) { input.appendChild(el("option", {value: String(c), text: String(c)})); });
      input.value = value === undefined || value === null ? "" : String(value);
    } else {
      input = el("input", {type: "text", className: "rb-value vTextField"});
      input.value = value === undefined || value === null ? "" : value;
    }
    input.addEventListener("input", function () { self.changed(); });
    input.addEventListener("change", function () { self.changed(); });
    return input;
  };

  Builder.prototype.readValue = function (input) {
    var text = input.value;
    if (input.dataset.list) {
      var items = text.split(",").map(function (s) { return s.trim(); }).filter(function (s) { return s !== ""; });
      return input.dataset.list === "numbers" ? items.map(function (s) { return /^\d+$/.test(s) ? parseInt(s, 10) : s; }) : items;
    }
    if (input.dataset.type === "bool") { return text === "unknown" ? "unknown" : text === "true"; }
    if (input.dataset.type === "number") { return text === "" ? null : Number(text); }
    return text;
  };

  Builder.prototype.serializeGroup = function (box) {
    var self = this;
    var children = [];
    Array.prototype.forEach.call(box.querySelector(":scope > .rb-children").children, function (child) {
      var node = child.dataset.kind === "group" ? self.serializeGroup(child) : self.serializeCondition(child);
      if (node === null) { return; }
      var not = child.querySelector(":scope > .rb-not-label input, :scope > .rb-group-head > .rb-not-label input");
      children.push(not && not.checked ? {not: node} : node);
    });
    return {op: box.querySelector(":scope > .rb-group-head > .rb-op").value, rules: children};
  };

  Builder.prototype.serializeCondition = function (row) {
    var field = row.querySelector(".rb-field").value;
    if (!field) { return null; }
    var node = {field: field, operator: row.querySelector(".rb-operator").value};
    var input = row.querySelector(".rb-value");
    if (input) { node.value = this.readValue(input); }
    return node;
  };

  Builder.prototype.scheduleCount = function () {
    var self = this;
    clearTimeout(this.timer);
    this.countValue.textContent = "…";
    this.timer = setTimeout(function () { self.count(); }, 400);
  };

  Builder.prototype.count = function () {
    var self = this;
    var rules;
    try { rules = JSON.parse(this.textarea.value); } catch (e) {
      this.countValue.textContent = "?"; this.showError("The JSON does not parse: " + e.message); return;
    }
    var number = ++this.requestNumber;
    fetch(this.previewUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json"},
      body: JSON.stringify({rules: rules})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (number !== self.requestNumber) { return; }
      if (result.ok) {
        self.countValue.textContent = Number(result.body.count).toLocaleString();
        self.hideError();
      } else {
        var error = result.body.error || {};
        var detail = error.fields && error.fields.rules ? error.fields.rules.join(" ") : "";
        self.countValue.textContent = "?";
        self.showError(detail || error.message || "These rules cannot be counted.");
      }
    }).catch(function () {
      if (number === self.requestNumber) { self.countValue.textContent = "?"; }
    });
  };

  Builder.prototype.showError = function (text) { this.error.textContent = text; this.error.hidden = false; };
  Builder.prototype.hideError = function () { this.error.hidden = true; };

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".rule-builder"), function (root) {
      if (!root.dataset.started) { root.dataset.started = "1"; root.builder = new Builder(root); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
