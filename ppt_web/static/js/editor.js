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
      noAnswer: "fekk ikkje svar frå tenaren. Teksten er teken vare på i nettlesaren og vert lagra når du skriv vidare.",
      stopped: "Lagringa er stoppa. Kopier teksten og last sida på nytt.",
      signIn: "du er logga ut. Logg inn på nytt i ei ny fane; teksten er teken vare på i nettlesaren.",
      forbidden: "du kan ikkje endre dette brevet no. Last sida på nytt.",
      gone: "finn ikkje brevet lenger. Last sida på nytt.",
      tooLarge: "teksten er for stor til å lagrast. Ta bort noko (til dømes store bilete).",
      expired: "sida er for gammal. Last sida på nytt; teksten er teken vare på i nettlesaren.",
      server: "feil på tenaren (kode {code}). Teksten er teken vare på i nettlesaren og vert lagra når du skriv vidare."
    },
    nb: {
      header: "Overskrift", h2: "Overskrift 2", h3: "Overskrift 3", normal: "Vanlig tekst",
      bold: "Fet", italic: "Kursiv", underline: "Understreket",
      ordered: "Nummerert liste", bullet: "Punktliste", outdent: "Mindre innrykk", indent: "Mer innrykk",
      align: "Justering", link: "Lenke", clean: "Fjern formatering",
      tableInsert: "Sett inn tabell (3 × 3)", tableRow: "Ny rad under", tableColumn: "Ny kolonne til høyre",
      tableDeleteRow: "Slett rad", tableDeleteColumn: "Slett kolonne", tableDelete: "Slett tabell",
      editor: "Tekst", saving: "Lagrer …", notSaved: "Ikke lagret: ",
      noAnswer: "fikk ikke svar fra serveren. Teksten er tatt vare på i nettleseren og blir lagret når du skriver videre.",
      stopped: "Lagringen er stoppet. Kopier teksten og last siden på nytt.",
      signIn: "du er logget ut. Logg inn på nytt i en ny fane; teksten er tatt vare på i nettleseren.",
      forbidden: "du kan ikke endre dette brevet nå. Last siden på nytt.",
      gone: "finner ikke brevet lenger. Last siden på nytt.",
      tooLarge: "teksten er for stor til å lagres. Ta bort noe (for eksempel store bilder).",
      expired: "siden er for gammel. Last siden på nytt; teksten er tatt vare på i nettleseren.",
      server: "feil på serveren (kode {code}). Teksten er tatt vare på i nettleseren og blir lagret når du skriver videre."
    },
    en: {
      header: "Heading", h2: "Heading 2", h3: "Heading 3", normal: "Normal text",
      bold: "Bold", italic: "Italic", underline: "Underline",
      ordered: "Numbered list", bullet: "Bulleted list", outdent: "Less indent", indent: "More indent",
      align: "Alignment", link: "Link", clean: "Remove formatting",
      tableInsert: "Insert table (3 × 3)", tableRow: "Insert row below", tableColumn: "Insert column right",
      tableDeleteRow: "Delete row", tableDeleteColumn: "Delete column", tableDelete: "Delete table",
      editor: "Text", saving: "Saving …", notSaved: "Not saved: ",
      noAnswer: "no answer from the server. The text is kept in this browser and saved when you type on.",
      stopped: "Saving has stopped. Copy the text and reload the page.",
      signIn: "you are signed out. Sign in again in a new tab; the text is kept in this browser.",
      forbidden: "you cannot change this letter now. Reload the page.",
      gone: "the letter is not there any more. Reload the page.",
      tooLarge: "the text is too large to be saved. Remove something (large pictures, say).",
      expired: "the page is too old. Reload the page; the text is kept in this browser.",
      server: "server error (code {code}). The text is kept in this browser and saved when you type on."
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

  var FORMATS = ["header", "bold", "italic", "underline", "strike", "list", "indent", "align", "link", "table"];

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

  // Pasted HTML (Word, web pages) without its style sheets, style attributes and comments before Quill
  // reads it: none of that would be kept, and parsing it under the page's CSP only makes console noise.
  function withoutStyles(html) {
    return html
      .replace(/<!--[\s\S]*?-->/g, "")
      .replace(/<style[\s\S]*?<\/style\s*>/gi, "")
      .replace(/\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, "");
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
      // Only what the server's sanitizer keeps (letters/sanitize.py): pasted colours, fonts, sizes, images,
      // code blocks or video never show in the editor, so what the writer sees is what is saved.
      formats: FORMATS,
      modules: {
        table: true,
        uploader: { handler: function () { /* a pasted or dropped picture file is not taken in */ } },
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
    quill.root.addEventListener("paste", function (event) {
      var data = event.clipboardData;
      var html = data ? data.getData("text/html") : "";
      if (!html || event.defaultPrevented || !quill.isEnabled()) { return; }
      event.preventDefault();  // Quill's own paste handler then leaves it to this one
      var range = quill.getSelection(true);
      if (range) { quill.clipboard.onPaste(range, { html: withoutStyles(html), text: data.getData("text/plain") }); }
    }, true);
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

  // The unsaved text, kept in this browser (localStorage) until a save of it succeeds, so a closed tab, an
  // expired session or a beacon that could not be sent loses nothing. Only this letter's text and the
  // version it was based on; offered back on the next visit, never restored without asking.
  function keeper(postId) {
    var key = "ppt-letter:" + postId;
    return {
      read: function () {
        try {
          var kept = JSON.parse(window.localStorage.getItem(key) || "null");
          return kept && typeof kept.text === "string" ? kept : null;
        } catch (e) { return null; }
      },
      write: function (version, text) {
        try { window.localStorage.setItem(key, JSON.stringify({ version: String(version), text: text })); } catch (e) { /* full or off */ }
      },
      clear: function () {
        try { window.localStorage.removeItem(key); } catch (e) { /* off */ }
      }
    };
  }

  // Autosave (a form with hx-post around a textarea[data-autosave], hx-swap="none"): every answer is read
  // here. The status line (#letter-state, a live region) stays in the page; only its text and data-state
  // change. 409/422: the status line says why; a refusal (someone saved meanwhile) stops saving until the
  // page is reloaded, so the writer copies their text rather than overwrite the other's. Any other answer
  // (signed out, forbidden, gone, too large, server error) or none at all: an error state, the text kept
  // in the browser, and htmx is not let to follow a redirect away from the editor.
  function setupAutosave(textarea) {
    var form = textarea.form;
    if (!form) { return; }
    var quill = textarea.quill;
    var stopped = false;
    var saved = textarea.value;
    var sending = null;
    var previewAfterSave = null;
    var offer = { open: false };  // an earlier visit's unsaved text is being offered back
    var keep = keeper(textarea.dataset.letterPost || "");
    var versionInput = document.getElementById("letter-version");
    function version() { return versionInput ? versionInput.value : ""; }

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
    function errorText(status) {
      if (status === 0) { return T.noAnswer; }
      if (status === 401) { return T.signIn; }
      if (status === 400) { return T.expired; }
      if (status === 403) { return T.forbidden; }
      if (status === 404) { return T.gone; }
      if (status === 413) { return T.tooLarge; }
      return T.server.replace("{code}", String(status));
    }
    function failed(status) {
      sending = null;
      previewAfterSave = null;
      unsaved();
      form.dataset.error = String(status);
      state("error", T.notSaved + errorText(status));
    }
    function openPreview() {
      var href = previewAfterSave;
      previewAfterSave = null;
      var opened = window.open(href, "_blank");
      if (opened) { opened.opener = null; } else { window.location.href = href; }
    }

    // The answer (the status line's partial): its version and state go into the elements on the page.
    function answered(xhr) {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var answer = doc.getElementById("letter-state");
      var newVersion = doc.getElementById("letter-version");
      if (!answer || !newVersion) { failed(xhr.status || 500); return; }
      if (versionInput) { versionInput.value = newVersion.value; }
      var el = document.getElementById("letter-state");
      if (el) {
        el.dataset.state = answer.dataset.state || "";
        el.replaceChildren.apply(el, Array.prototype.map.call(answer.childNodes, function (n) {
          return document.importNode(n, true);
        }));
      }
      delete form.dataset.error;
      if (answer.dataset.state === "saved") {
        if (sending !== null) { saved = sending; }
        if (dirty()) {
          keep.write(version(), textarea.value);
          flush();
        } else {
          keep.clear();
          if (previewAfterSave) { openPreview(); }
        }
      } else {
        previewAfterSave = null;
        if (answer.dataset.state === "conflict") {
          stopped = true;
          form.dataset.stopped = "1";
        }
      }
      sending = null;
      unsaved();
    }

    // data-unsaved on the form: there is text not yet saved (typed, or on its way to the server).
    function unsaved() {
      if (dirty() || sending !== null) { form.dataset.unsaved = "1"; } else { delete form.dataset.unsaved; }
    }

    textarea.addEventListener("input", function () {
      unsaved();
      if (stopped) {  // its version is stale: a copy would never be offered back, nor may it replace another tab's
        state("conflict", T.notSaved + T.stopped);
        return;
      }
      if (offer.open) { return; }
      if (dirty()) { keep.write(version(), textarea.value); } else { keep.clear(); }
    });
    form.addEventListener("htmx:beforeRequest", function (event) {
      if (stopped || !dirty()) { event.preventDefault(); return; }
      sending = textarea.value;
      unsaved();
      state("saving", T.saving);  // once per request, not per keystroke
    });
    form.addEventListener("htmx:beforeOnLoad", function (event) {
      var xhr = event.detail.xhr;
      event.preventDefault();  // no swap and no HX-Redirect: this form reads its answers itself
      if (xhr.status === 200 || xhr.status === 409 || xhr.status === 422) { answered(xhr); } else { failed(xhr.status); }
    });
    ["htmx:sendError", "htmx:timeout"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        event.stopPropagation();  // the page-wide "no answer" notice is this status line here
        failed(0);
      });
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { flush(); }
    });
    // Closing the tab right after typing: the last text goes as a beacon. Its answer is 204 whatever
    // happened (nobody is there to read it); if it is too large or not sent, the browser's copy remains.
    window.addEventListener("pagehide", function () {
      if (stopped || !dirty() || !navigator.sendBeacon) { return; }
      var url = form.getAttribute("action");
      try { navigator.sendBeacon(url + (url.indexOf("?") < 0 ? "?" : "&") + "beacon=1", new FormData(form)); } catch (e) { /* kept */ }
    });

    // Preview shows the saved letter: save what is typed first, then open it.
    var preview = document.getElementById("letter-preview");
    if (preview) {
      preview.addEventListener("click", function (event) {
        if (stopped || (!dirty() && sending === null)) { return; }
        event.preventDefault();
        previewAfterSave = preview.href;
        flush();
      });
    }

    // The unsaved text of an earlier visit, based on the version shown now and not what is saved: offer it.
    var kept = keep.read();
    var baseline = quill ? htmlOf(quill) : textarea.value;
    var box = document.getElementById("letter-restore");
    if (kept && kept.version === version() && kept.text !== baseline && kept.text !== textarea.value && box) {
      offer.open = true;
      box.hidden = false;
      var close = function () { offer.open = false; box.hidden = true; };
      document.getElementById("letter-restore-yes").addEventListener("click", function () {
        close();
        if (quill) {
          quill.setContents(quill.clipboard.convert({ html: kept.text, text: "" }), "user");
          quill.focus();
        } else {
          textarea.value = kept.text;
          textarea.dispatchEvent(new Event("input", { bubbles: true }));
        }
      });
      document.getElementById("letter-restore-no").addEventListener("click", function () {
        close();
        keep.clear();
        if (dirty()) { keep.write(version(), textarea.value); }
      });
    } else if (kept) {
      keep.clear();  // saved already (by the beacon), or based on a version no longer current
    }
  }

  // A letter that can no longer change (the post is no longer a draft, or is signed): forget its copy.
  function forgetFinished() {
    document.querySelectorAll("[data-letter-done]").forEach(function (el) {
      keeper(el.dataset.letterDone).clear();
    });
  }

  // Nytt brev frå mal: a note (N) has no recipients chosen for it; an outgoing letter (U) starts with the
  // guardians, as the page was first shown.
  function setupNewLetter() {
    var form = document.getElementById("new-letter-form");
    var select = form && form.querySelector("#template_id");
    if (!select) { return; }
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=recipients]"));
    var first = boxes.map(function (b) { return b.checked; });
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var type = option ? option.getAttribute("data-post-type") : "";
      if (type === "N") {
        boxes.forEach(function (b) { b.checked = false; });
      } else if (type === "U" && !boxes.some(function (b) { return b.checked; })) {
        boxes.forEach(function (b, i) { b.checked = first[i]; });
      }
    });
  }

  function init(root) {
    if (!window.Quill) { return; }
    (root || document).querySelectorAll("textarea[data-rich-text]").forEach(function (textarea) {
      if (makeEditor(textarea) && textarea.hasAttribute("data-autosave")) { setupAutosave(textarea); }
    });
  }

  function start() {
    forgetFinished();
    setupNewLetter();
    init(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // Forms that htmx swaps in (a template editor re-rendered with its errors) get their editor too.
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
