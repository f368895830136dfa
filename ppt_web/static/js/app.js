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
