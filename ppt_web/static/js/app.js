// Small behaviour that htmx does not cover. No inline scripts: the CSP forbids them.
document.addEventListener("htmx:sendError", function () {
  var flash = document.getElementById("flash");
  if (flash) {
    flash.innerHTML = "";
    var p = document.createElement("p");
    p.className = "alert error";
    p.textContent = document.documentElement.lang === "en"
      ? "No answer from the server. Check the connection and try again."
      : "Fekk ikkje svar frå tenaren. Sjekk tilkoplinga og prøv igjen.";
    flash.appendChild(p);
  }
});

// Live pages poll (docs/decisions.md, "Live pages poll"), but not while the tab is hidden: no load for nobody.
document.addEventListener("htmx:beforeRequest", function (event) {
  var elt = event.detail && event.detail.elt;
  if (document.hidden && elt && elt.hasAttribute && elt.hasAttribute("data-poll")) {
    event.preventDefault();
  }
});
