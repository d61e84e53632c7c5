// Query page of the gateway. Every asset is served by the gateway itself: the page
// must work on closed government networks, with no CDN.
(function () {
  "use strict";
  var body = document.body;
  var endpoint = body.dataset.endpoint;
  var accept = "application/graphql-response+json, application/json;q=0.9";
  // The page's labels in its language (Vietnamese by default), from the gateway's
  // translation catalogue: procedures, legal bases, enum values, messages.
  var labels = JSON.parse(body.dataset.labels || "{}");
  var enums = labels.enums || {};
  var enumFields = labels.enumFields || {};
  var messages = labels.messages || {};

  // "MALE" at a field of an enum type reads "Nam (MALE)": the label beside the
  // canonical value. Prefill fields carry their canonical path and a JSON value.
  function enumLabel(fieldName, value) {
    var kinds = enumFields[fieldName] || [];
    for (var i = 0; i < kinds.length; i++) {
      var label = (enums[kinds[i]] || {})[value];
      if (label) {
        return label + " (" + value + ")";
      }
    }
    return null;
  }
  function labelled(node) {
    if (Array.isArray(node)) {
      return node.map(labelled);
    }
    if (node === null || typeof node !== "object") {
      return node;
    }
    var out = {};
    Object.keys(node).forEach(function (key) {
      var value = node[key];
      var shown = typeof value === "string" ? enumLabel(key, value) : null;
      out[key] = shown || labelled(value);
    });
    if (typeof node.path === "string" && typeof node.value === "string") {
      var parts = node.path.split(".");
      var shownValue = enumLabel(parts[parts.length - 1], node.value);
      if (shownValue) {
        out.value = shownValue;
      }
    }
    return out;
  }
  function withLabels(result) {
    if (result && typeof result === "object" && result.data) {
      return Object.assign({}, result, { data: labelled(result.data) });
    }
    return result;
  }

  // In the demo, each request is signed for the purpose chosen above the editor by
  // the gateway's loopback-only UnsafeDemoTokens route; the token covers the exact body.
  // The route wants this start's secret, which `gateway demo` prints in the page's
  // address after "#demo=": a fragment is never sent to a server. It is kept for this
  // tab only (a reload keeps working) and taken out of the address bar.
  var demoSecret = (function () {
    var found = /(?:^#|&)demo=([A-Za-z0-9_-]+)/.exec(window.location.hash);
    try {
      if (found) {
        window.sessionStorage.setItem("gateway-demo-secret", found[1]);
      }
      var kept = window.sessionStorage.getItem("gateway-demo-secret");
      if (found) {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
      }
      return kept || "";
    } catch (e) {
      return found ? found[1] : "";
    }
  })();
  function purpose() {
    var form = document.getElementById("purpose");
    var subjects = form.subjects.value.split(/[\s,]+/).filter(Boolean);
    return {
      procedure: form.procedure.value,
      case: form.case.value,
      officer: form.officer.value,
      subjects: subjects.length ? subjects : null,
    };
  }

  // The legal basis of the chosen procedure, in the page's language.
  var form = document.getElementById("purpose");
  if (form) {
    form.procedure.addEventListener("change", function () {
      var shown = document.getElementById("legal-basis");
      var procedure = (labels.procedures || {})[form.procedure.value];
      shown.textContent = "";
      if (procedure) {
        var title = document.createElement("strong");
        title.textContent = messages.legalBasis || "";
        shown.appendChild(title);
        shown.appendChild(document.createTextNode(" " + procedure.legalBasis.join("; ")));
      }
    });
  }

  async function signedFetcher(params) {
    var text = JSON.stringify(params);
    var ask = Object.assign({ body: text }, purpose());
    var signed = await fetch("/_unsafe/demo-tokens", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Demo-Secret": demoSecret },
      body: JSON.stringify(ask),
    });
    var answered = await signed.json();
    if (!signed.ok) {
      // Shown in the result pane, as GraphQL errors are.
      var message = !demoSecret && messages.demoSecret ? messages.demoSecret : answered.message;
      return { errors: [{ message: message, extensions: { code: answered.code } }] };
    }
    var token = answered.token;
    var answer = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: accept, Authorization: "Bearer " + token },
      body: text,
    });
    return withLabels(await answer.json());
  }

  var plainFetcher = GraphiQL.createFetcher({ url: endpoint, headers: { Accept: accept } });
  function labelledFetcher(params, options) {
    var result = plainFetcher(params, options);
    return result && typeof result.then === "function" ? result.then(withLabels) : result;
  }
  var fetcher = body.dataset.demoTokens === "true" ? signedFetcher : labelledFetcher;
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: body.dataset.defaultQuery || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
