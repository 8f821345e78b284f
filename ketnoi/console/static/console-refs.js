// Registry forms (ADR 0026 decision 12): a reference field's search box suggests as you type. The page is
// complete without this script: its find button posts the form and the answer offers the same choices.
// Here the same round trip runs in the background (the form posted with find=<field>: nothing is saved)
// and its choices fill a <datalist> on the search box; picking one puts its id in the field.
"use strict";
(function () {
  function enhance(box) {
    var input = box.querySelector("input[type=search]");
    var button = box.querySelector("button[name=find]");
    var form = input.form;
    var key = button.value;
    var field = form.querySelector("#f-" + key);
    var list = document.createElement("datalist");
    list.id = input.id + "-list";
    box.appendChild(list);
    input.setAttribute("list", list.id);
    var choices = {};
    var asked = "";
    var timer = null;

    function searched(text) {  // what the server compares with: a search already answered is not run again
      var kept = form.querySelector("input[name='searched_" + key + "']");
      if (!kept) {
        kept = document.createElement("input");
        kept.type = "hidden";
        kept.name = "searched_" + key;
        box.appendChild(kept);
      }
      kept.value = text;
    }

    function pick(ref, label) {
      field.value = ref.slice(ref.indexOf("/") + 1);
      searched(input.value);
      var said = form.querySelector("#f-" + key + "-name");  // "Chosen: <name>", made when there was none
      if (!said) {
        said = document.createElement("p");
        said.id = "f-" + key + "-name";
        box.parentNode.insertBefore(said, box);
      }
      said.className = "ref-name";
      said.textContent = box.getAttribute("data-chosen") + ": ";
      var name = document.createElement("strong");
      name.textContent = label.replace(/ \([^()]*\)$/, "");  // the name without its "(id)"
      said.appendChild(name);
    }

    function suggest(text) {
      asked = text;
      var data = new URLSearchParams(new FormData(form));
      data.set("find", key);
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (answer) { return answer.text(); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          list.textContent = "";
          choices = {};
          page.querySelectorAll("#f-" + key + "-choices label").forEach(function (label) {
            var text = label.textContent.trim();
            choices[text] = label.querySelector("input").value;
            var option = document.createElement("option");
            option.value = text;
            list.appendChild(option);
          });
        });
    }

    input.addEventListener("input", function () {
      if (choices[input.value]) {
        pick(choices[input.value], input.value);
        return;
      }
      var text = input.value.trim();
      clearTimeout(timer);
      if (text.length >= 2 && text !== asked) {
        timer = setTimeout(function () { suggest(text); }, 300);
      }
    });
  }

  document.querySelectorAll("form.registry-form .ref-find").forEach(enhance);
})();
