// Runs an `rprof report --format html` page's script under node against a
// small fake DOM, then hovers, searches, zooms and opens the table, and
// prints what the page showed as JSON (tests/integration/flame.rs).
//
//     node flame_page.js PAGE.html SEARCH
"use strict";
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const data = page.match(/<script type="application\/json" id="flame-data">([\s\S]*?)<\/script>/)[1];
const code = page.match(/<script>\n([\s\S]*?)<\/script>/)[1];
const drawn = { rects: 0, labels: [] };
const ctx = {
  setTransform() {}, clearRect() {},
  fillRect() { drawn.rects++; },
  fillText(text) { drawn.labels.push(text); },
  measureText(text) { return { width: 7 * text.length }; },
};
function element(id) {
  return {
    id, style: {}, dataset: {}, textContent: id === "flame-data" ? data : "", value: "",
    className: "", children: [], listeners: {}, clientWidth: 1200,
    addEventListener(type, f) { this.listeners[type] = f; },
    appendChild(child) { this.children.push(child); this.lastChild = child; return child; },
    replaceChildren(fragment) { this.children = fragment.children; },
    getBoundingClientRect() { return { left: 0, top: 0 }; },
    getContext() { return ctx; },
  };
}
const elements = {};
const headers = ["self", "total", "selfValue", "totalValue", "name"].map(function (key) {
  const th = element("th"); th.dataset.key = key; return th;
});
global.window = { devicePixelRatio: 1, addEventListener() {} };
global.document = {
  getElementById(id) { return elements[id] || (elements[id] = element(id)); },
  querySelectorAll(query) { return query.includes("Value") ? headers.slice(2, 4) : headers; },
  createElement(tag) { return element(tag); },
  createDocumentFragment() { return element("fragment"); },
  addEventListener() {},
};
(0, eval)(code);
const canvas = elements.canvas;
const height = parseFloat(canvas.style.height);
const result = { firstDraw: drawn.rects, labels: drawn.labels.length };
const data_ = JSON.parse(data);
// The row of `all`: the bottom one, or the top one when inverted.
const allY = data_.inverted ? 5 : height - 5;
canvas.listeners.mousemove({ clientX: 600, clientY: allY });
result.hoverAll = elements.detail.textContent;
elements.search.value = process.argv[3];
elements.search.listeners.input();
result.matched = elements.matched.textContent;
drawn.rects = 0;
canvas.listeners.click({ clientX: 600, clientY: data_.inverted ? allY + 16 : allY - 16 });
result.zoomedRects = drawn.rects;
elements["show-table"].listeners.click();
result.tableNote = elements["table-note"].textContent;
result.rows = elements.rows.children.map(function (tr) {
  return tr.children.map(function (td) { return td.textContent; });
});
elements.reset.listeners.click();
console.log(JSON.stringify(result));
