// The cashier's till screen: draws each verdict the server sends (server-sent events).
// Labels come from data-* attributes of #till, so this file holds no language.
"use strict";

(function () {
  const root = document.getElementById("till");
  if (!root) return;
  const label = (name) => root.dataset[name] || name;
  const lang = root.dataset.lang || "fr";
  const verdictBox = document.getElementById("verdict");
  const history = document.getElementById("history");
  const link = document.getElementById("till-link");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function money(cents, currency) {
    if (cents === null || cents === undefined) return "—";
    return new Intl.NumberFormat(lang, { style: "currency", currency: currency || "EUR" })
      .format(cents / 100);
  }

  function initials(name) {
    return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2)
      .map((part) => part[0].toUpperCase()).join("");
  }

  function portrait(pupil) {
    const box = el("div", "portrait");
    const fallback = el("span", "initials", pupil ? initials(pupil.name) : "?");
    if (pupil && pupil.photo_url) {
      const img = el("img");
      img.alt = "";
      img.src = pupil.photo_url;
      img.addEventListener("error", () => img.replaceWith(fallback));
      box.append(img);
    } else {
      box.append(fallback);
    }
    return box;
  }

  function draw(v) {
    const pupil = v.pupil;
    verdictBox.replaceChildren();
    verdictBox.className = "verdict " + (v.accepted ? "accepted" : "refused");
    verdictBox.append(portrait(pupil));
    const body = el("div", "verdict-body");
    body.append(el("p", "decision", v.accepted ? label("accepted") : label("refused")));
    body.append(el("p", "reason", v.message));
    if (pupil) {
      body.append(el("p", "name", pupil.name));
      if (pupil.classroom) body.append(el("p", "classroom", pupil.classroom));
    } else {
      body.append(el("p", "name", label("unknown")));
    }
    if (pupil && pupil.allergies) {
      body.append(el("p", "allergies", label("allergies") + " : " + pupil.allergies));
    }
    if (pupil && pupil.diet_notes) {
      body.append(el("p", "diet", label("diet") + " : " + pupil.diet_notes));
    }
    const figures = el("dl", "figures");
    figures.append(el("dt", "", label("price")), el("dd", "price", money(v.price_cents, v.currency)));
    figures.append(el("dt", "", label("balance")),
                   el("dd", "balance", money(v.balance_cents, v.currency)));
    body.append(figures);
    const notes = [];
    if (v.decided_offline) notes.push(label("offline"));
    if (v.repeat) notes.push(label("repeat"));
    if (notes.length) body.append(el("p", "notes", notes.join(" · ")));
    if (v.alert) body.append(el("p", "till-alert", "⚠ " + v.alert));
    verdictBox.append(body);

    const time = new Date(v.read_at).toLocaleTimeString(lang);
    const item = el("li", v.accepted ? "ok" : "ko",
                    `${time} — ${pupil ? pupil.name : label("unknown")} — ${v.message}`);
    history.prepend(item);
    while (history.children.length > 12) history.lastElementChild.remove();
  }

  const source = new EventSource(root.dataset.events);
  source.addEventListener("open", () => {
    link.textContent = label("connected");
    link.className = "till-link up";
  });
  source.addEventListener("error", () => {
    link.textContent = label("disconnected");
    link.className = "till-link down";
  });
  source.addEventListener("verdict", (event) => draw(JSON.parse(event.data)));
})();
