// Enrolling a card: wait for an unknown card's tap on the chosen reader, then offer to
// link it. Labels come from data-* attributes of #enrol.
"use strict";

(function () {
  const root = document.getElementById("enrol");
  if (!root) return;
  const form = document.getElementById("enrol-form");
  const source = new EventSource(root.dataset.events);
  source.addEventListener("verdict", (event) => {
    const tap = JSON.parse(event.data);
    const wait = document.getElementById("enrol-wait");
    if (tap.reason !== "unknown_card") {
      wait.textContent = root.dataset.known;
      return;
    }
    document.getElementById("tap-row").value = tap.id;
    document.getElementById("enrol-card").textContent = "… " + tap.card.uid_end;
    document.getElementById("enrol-warning").textContent =
      tap.card.secure ? root.dataset.secure : root.dataset.copyable;
    document.getElementById("enrol-warning").className = tap.card.secure ? "" : "copyable";
    form.hidden = false;
  });
})();
