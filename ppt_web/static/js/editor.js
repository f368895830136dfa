// The rich-text editor (Quill 2, vendored in static/vendor/quill) for every textarea[data-rich-text].
// The textarea stays the form's field: every change writes the editor's HTML back into it and fires an
// `input` event on it, so htmx (autosave) and ordinary form posts see the text. The server sanitizes
// whatever comes (letters/sanitize.py). No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  var LANG = (document.documentElement.lang || "nn").slice(0, 2);
  var TEXT = {
    nn: {
      header: "Overskrift", h2: "Overskrift 2", h3: "Overskrift 3", normal: "Vanleg tekst",
      bold: "Feit", italic: "Kursiv", underline: "Understreka",
      ordered: "Nummerert liste", bullet: "Punktliste", outdent: "Mindre innrykk", indent: "Meir innrykk",
      align: "Justering", link: "Lenkje", clean: "Fjern formatering",
      tableInsert: "Set inn tabell (3 × 3)", tableRow: "Ny rad under", tableColumn: "Ny kolonne til høgre",
      tableDeleteRow: "Slett rad", tableDeleteColumn: "Slett kolonne", tableDelete: "Slett tabell",
      editor: "Tekst", saving: "Lagrar …", notSaved: "Ikkje lagra: ",
      noAnswer: "fekk ikkje svar frå tenaren. Teksten vert lagra når du skriv vidare.",
      stopped: "Lagringa er stoppa. Kopier teksten og last sida på nytt."
    },
    nb: {
      header: "Overskrift", h2: "Overskrift 2", h3: "Overskrift 3", normal: "Vanlig tekst",
      bold: "Fet", italic: "Kursiv", underline: "Understreket",
      ordered: "Nummerert liste", bullet: "Punktliste", outdent: "Mindre innrykk", indent: "Mer innrykk",
      align: "Justering", link: "Lenke", clean: "Fjern formatering",
      tableInsert: "Sett inn tabell (3 × 3)", tableRow: "Ny rad under", tableColumn: "Ny kolonne til høyre",
      tableDeleteRow: "Slett rad", tableDeleteColumn: "Slett kolonne", tableDelete: "Slett tabell",
      editor: "Tekst", saving: "Lagrer …", notSaved: "Ikke lagret: ",
      noAnswer: "fikk ikke svar fra serveren. Teksten blir lagret når du skriver videre.",
      stopped: "Lagringen er stoppet. Kopier teksten og last siden på nytt."
    },
    en: {
      header: "Heading", h2: "Heading 2", h3: "Heading 3", normal: "Normal text",
      bold: "Bold", italic: "Italic", underline: "Underline",
      ordered: "Numbered list", bullet: "Bulleted list", outdent: "Less indent", indent: "More indent",
      align: "Alignment", link: "Link", clean: "Remove formatting",
      tableInsert: "Insert table (3 × 3)", tableRow: "Insert row below", tableColumn: "Insert column right",
      tableDeleteRow: "Delete row", tableDeleteColumn: "Delete column", tableDelete: "Delete table",
      editor: "Text", saving: "Saving …", notSaved: "Not saved: ",
      noAnswer: "no answer from the server. The text is saved when you type on.",
      stopped: "Saving has stopped. Copy the text and reload the page."
    }
  };
  var T = TEXT[LANG] || TEXT.nn;

  // Table buttons: Quill's table module has no toolbar icons of its own; these show a short sign.
  var TABLE_BUTTONS = [
    ["table-insert", "tableInsert", "▦", function (table) { table.insertTable(3, 3); }],
    ["table-row", "tableRow", "+≡", function (table) { table.insertRowBelow(); }],
    ["table-column", "tableColumn", "+⫴", function (table) { table.insertColumnRight(); }],
    ["table-delete-row", "tableDeleteRow", "−≡", function (table) { table.deleteRow(); }],
    ["table-delete-column", "tableDeleteColumn", "−⫴", function (table) { table.deleteColumn(); }],
    ["table-delete", "tableDelete", "✕▦", function (table) { table.deleteTable(); }]
  ];

  function label(el, text) {
    if (!el) { return; }
    el.setAttribute("title", text);
    el.setAttribute("aria-label", text);
  }

  function labelToolbar(root) {
    var q = function (sel) { return root.querySelector(sel); };
    label(q(".ql-header .ql-picker-label"), T.header);
    label(q('.ql-header .ql-picker-item[data-value="2"]'), T.h2);
    label(q('.ql-header .ql-picker-item[data-value="3"]'), T.h3);
    label(q(".ql-header .ql-picker-item:not([data-value])"), T.normal);
    label(q("button.ql-bold"), T.bold);
    label(q("button.ql-italic"), T.italic);
    label(q("button.ql-underline"), T.underline);
    label(q('button.ql-list[value="ordered"]'), T.ordered);
    label(q('button.ql-list[value="bullet"]'), T.bullet);
    label(q('button.ql-indent[value="-1"]'), T.outdent);
    label(q('button.ql-indent[value="+1"]'), T.indent);
    label(q(".ql-align .ql-picker-label"), T.align);
    label(q("button.ql-link"), T.link);
    label(q("button.ql-clean"), T.clean);
    TABLE_BUTTONS.forEach(function (b) {
      var button = q("button.ql-" + b[0]);
      if (button) {
        button.textContent = b[2];
        button.classList.add("ql-table-button");
        label(button, T[b[1]]);
      }
    });
  }

  // What the textarea gets: Quill's semantic HTML (real <ul>/<ol>, nested lists for indents, tables
  // with their data-row), with the non-breaking spaces it puts for every space turned back into
  // spaces (else a line could never break in the PDF), and empty lines kept as <p><br></p>.
  function htmlOf(quill) {
    if (quill.getLength() <= 1 && !quill.root.querySelector("table")) { return ""; }
    return quill.getSemanticHTML()
      .replace(/&nbsp;/g, " ")
      .replace(/<p><\/p>/g, "<p><br></p>");
  }

  function makeEditor(textarea) {
    if (textarea.dataset.richTextReady) { return null; }
    textarea.dataset.richTextReady = "1";
    var holder = document.createElement("div");
    holder.className = "rich-text";
    var box = document.createElement("div");
    box.className = "rich-text-editor";
    holder.appendChild(box);
    textarea.parentNode.insertBefore(holder, textarea.nextSibling);
    textarea.hidden = true;

    var handlers = {};
    TABLE_BUTTONS.forEach(function (b) {
      handlers[b[0]] = function () { b[3](this.quill.getModule("table")); };
    });
    var quill = new window.Quill(box, {
      theme: "snow",
      modules: {
        table: true,
        toolbar: {
          container: [
            [{ header: [2, 3, false] }],
            ["bold", "italic", "underline"],
            [{ list: "ordered" }, { list: "bullet" }, { indent: "-1" }, { indent: "+1" }],
            [{ align: [] }],
            ["link", "clean"],
            TABLE_BUTTONS.map(function (b) { return b[0]; })
          ],
          handlers: handlers
        }
      }
    });
    // Load the stored HTML through Quill's own parser (a detached document: nothing in it runs).
    if (textarea.value.trim()) {
      quill.setContents(quill.clipboard.convert({ html: textarea.value, text: "" }), "silent");
      quill.history.clear();
    }
    var toolbar = quill.getModule("toolbar");
    if (toolbar && toolbar.container) { labelToolbar(toolbar.container); }
    quill.root.setAttribute("aria-label", (textarea.labels && textarea.labels[0] && textarea.labels[0].textContent) || T.editor);
    quill.root.setAttribute("role", "textbox");
    quill.root.setAttribute("aria-multiline", "true");

    quill.on("text-change", function () {
      textarea.value = htmlOf(quill);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    });
    quill.on("selection-change", function (range) {
      if (range === null) { textarea.dispatchEvent(new CustomEvent("letter-flush", { bubbles: true })); }
    });
    textarea.quill = quill;
    return quill;
  }

  // Autosave (a form with hx-post around a textarea[data-autosave]): the status line says what
  // happened; a refusal (someone saved meanwhile: 409) stops it until the page is reloaded, so the
  // writer copies their text rather than overwrite the other's.
  function setupAutosave(textarea) {
    var form = textarea.form;
    if (!form) { return; }
    var stopped = false;
    var saved = textarea.value;
    var sending = null;

    function state(kind, text) {
      var el = document.getElementById("letter-state");
      if (!el) { return; }
      el.dataset.state = kind;
      el.textContent = text;
    }
    function dirty() { return textarea.value !== saved; }
    function flush() {
      if (!stopped && dirty()) { textarea.dispatchEvent(new CustomEvent("letter-flush", { bubbles: true })); }
    }

    textarea.addEventListener("input", function () {
      if (stopped) { state("conflict", T.notSaved + T.stopped); return; }
      if (dirty()) { state("saving", T.saving); }
    });
    form.addEventListener("htmx:beforeRequest", function (event) {
      if (stopped || !dirty()) { event.preventDefault(); return; }
      sending = textarea.value;
    });
    form.addEventListener("htmx:beforeSwap", function (event) {
      var status = event.detail.xhr.status;
      if (status === 409 || status === 422) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });
    form.addEventListener("htmx:afterSwap", function () {
      var el = document.getElementById("letter-state");
      var kind = el ? el.dataset.state : "";
      if (kind === "saved") {
        if (sending !== null) { saved = sending; }
        if (dirty()) { state("saving", T.saving); flush(); }
      } else if (kind === "conflict") {
        stopped = true;
        form.dataset.stopped = "1";
      }
      sending = null;
    });
    form.addEventListener("htmx:sendError", function () {
      sending = null;
      state("error", T.notSaved + T.noAnswer);
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { flush(); }
    });
    // Closing the tab right after typing: the last text goes as a beacon (the page is gone before
    // an answer could come back, so there is none to read).
    window.addEventListener("pagehide", function () {
      if (stopped || !dirty() || !navigator.sendBeacon) { return; }
      navigator.sendBeacon(form.getAttribute("action"), new FormData(form));
    });
  }

  function init(root) {
    if (!window.Quill) { return; }
    (root || document).querySelectorAll("textarea[data-rich-text]").forEach(function (textarea) {
      if (makeEditor(textarea) && textarea.hasAttribute("data-autosave")) { setupAutosave(textarea); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
  // Forms that htmx swaps in (a template editor re-rendered with its errors) get their editor too.
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
