// Escala web console: keyboard shortcuts and SLA countdowns. No inline script is
// allowed by the page's CSP; this file is the console's only own code.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  // r: focus the reply box, c: claim, n: take next (buttons and fields carry data-shortcut).
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var element = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (!element) {
      return;
    }
    event.preventDefault();
    if (element.tagName === "TEXTAREA" || element.tagName === "INPUT") {
      element.focus();
    } else {
      element.click();
    }
  });

  // Ctrl+Enter in a text box sends its form.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.tagName === "TEXTAREA") {
      var form = event.target.form;
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
    }
  });

  function duration(seconds) {
    seconds = Math.abs(Math.floor(seconds));
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  // SLA countdowns tick between server updates.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-deadline")) - now) / 1000;
      var template = left >= 0 ? el.getAttribute("data-due") : el.getAttribute("data-overdue");
      el.textContent = template.replace("%s", duration(left));
      el.classList.toggle("overdue", left < 0);
    });
  }
  setInterval(tick, 1000);

  // Keep the newest line of a transcript in view after a live update.
  function scrollTranscript() {
    var list = document.getElementById("transcript");
    if (list) { list.scrollTop = list.scrollHeight; }
  }
  document.addEventListener("DOMContentLoaded", scrollTranscript);
  document.addEventListener("htmx:afterSwap", scrollTranscript);

})();
