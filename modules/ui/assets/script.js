// Keyboard shortcuts, prompt emphasis and image drop for the generation tabs.
(function () {
  "use strict";
  var TABS = ["txt2img", "img2img"];

  function tabOf(element) {
    var node = element;
    while (node && node !== document.body) {
      if (node.id) {
        for (var i = 0; i < TABS.length; i++) {
          if (node.id.indexOf(TABS[i] + "_") === 0) return TABS[i];
        }
      }
      node = node.parentElement;
    }
    return null;
  }

  function isPromptBox(element) {
    if (!element || element.tagName !== "TEXTAREA") return false;
    var box = element.closest("[id$='_prompt'], [id$='_neg_prompt']");
    return box !== null && tabOf(box) !== null;
  }

  function clickIfVisible(id) {
    var button = document.getElementById(id);
    if (button && button.offsetParent !== null) {
      button.click();
      return true;
    }
    return false;
  }

  function setText(textarea, value) {
    textarea.value = value;
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // Ctrl+↑/↓: wrap the selection (or the word at the cursor) as (text:weight) and step the weight by 0.1.
  function changeEmphasis(textarea, up) {
    var text = textarea.value;
    var start = textarea.selectionStart;
    var end = textarea.selectionEnd;
    if (start === end) {
      while (start > 0 && /[^\s,()]/.test(text[start - 1])) start--;
      while (end < text.length && /[^\s,()]/.test(text[end])) end++;
      if (start === end) return false;
    }
    var before = text.slice(0, start);
    var after = text.slice(end);
    var selected = text.slice(start, end);
    var weight = 1.0;
    var match = /^\((.*):(-?\d+(?:\.\d+)?)\)$/.exec(selected);
    var openBefore = before.endsWith("(");
    var weightAfter = /^:(-?\d+(?:\.\d+)?)\)/.exec(after);
    if (match) {
      selected = match[1];
      weight = parseFloat(match[2]);
    } else if (openBefore && weightAfter) {
      before = before.slice(0, -1);
      after = after.slice(weightAfter[0].length);
      weight = parseFloat(weightAfter[1]);
    }
    weight = Math.round((weight + (up ? 0.1 : -0.1)) * 100) / 100;
    var replacement = weight === 1 ? selected : "(" + selected + ":" + weight.toFixed(1) + ")";
    setText(textarea, before + replacement + after);
    var innerStart = before.length + (weight === 1 ? 0 : 1);
    textarea.setSelectionRange(innerStart, innerStart + selected.length);
    return true;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!isPromptBox(target)) return;
    var tab = tabOf(target);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      clickIfVisible(tab + "_generate");
    } else if (event.key === "Enter" && event.altKey) {
      event.preventDefault();
      clickIfVisible(tab + "_skip");
    } else if (event.key === "Escape") {
      clickIfVisible(tab + "_interrupt");
    } else if ((event.key === "ArrowUp" || event.key === "ArrowDown") && (event.ctrlKey || event.metaKey)) {
      if (changeEmphasis(target, event.key === "ArrowUp")) event.preventDefault();
    }
  });

  // PNG text chunks (tEXt, iTXt uncompressed): returns the "parameters" text or null.
  function pngParameters(buffer) {
    var bytes = new Uint8Array(buffer);
    var view = new DataView(buffer);
    if (bytes.length < 8 || bytes[0] !== 0x89 || bytes[1] !== 0x50) return null;
    var offset = 8;
    var latin = new TextDecoder("latin1");
    var utf8 = new TextDecoder("utf-8");
    while (offset + 8 <= bytes.length) {
      var length = view.getUint32(offset);
      var type = latin.decode(bytes.subarray(offset + 4, offset + 8));
      var data = bytes.subarray(offset + 8, offset + 8 + length);
      if (type === "tEXt" || type === "iTXt") {
        var zero = data.indexOf(0);
        var key = latin.decode(data.subarray(0, zero));
        if (key === "parameters") {
          if (type === "tEXt") return latin.decode(data.subarray(zero + 1));
          if (data[zero + 1] !== 0) return null;
          var rest = zero + 3;
          rest = data.indexOf(0, rest) + 1;
          rest = data.indexOf(0, rest) + 1;
          return utf8.decode(data.subarray(rest));
        }
      }
      if (type === "IEND") break;
      offset += 12 + length;
    }
    return null;
  }

  document.addEventListener("drop", function (event) {
    var target = event.target;
    if (!isPromptBox(target)) return;
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || files.length === 0 || files[0].type.indexOf("image/") !== 0) return;
    event.preventDefault();
    var tab = tabOf(target);
    files[0].arrayBuffer().then(function (buffer) {
      var text = pngParameters(buffer);
      if (!text) return;
      var prompt = document.querySelector("#" + tab + "_prompt textarea");
      setText(prompt, text);
      setTimeout(function () { clickIfVisible(tab + "_paste"); }, 300);
    });
  }, true);

  // Hover titles for the icon buttons (Gradio buttons take no title attribute).
  var TITLES = {
    _paste: "Read generation parameters from the prompt box, or from the last generation when it is empty",
    _style_apply: "Apply the selected styles to the prompt",
    _style_create: "Save the prompt and negative prompt as a style",
    _styles_refresh: "Reload styles.csv",
    _res_switch_btn: "Swap width and height",
    _random_seed: "Set seed to -1: a new random seed every time",
    _reuse_seed: "Reuse the seed of the selected image",
    _random_subseed: "Set variation seed to -1",
    _reuse_subseed: "Reuse the variation seed of the selected image",
    _open_folder: "Open the output folder",
  };
  document.addEventListener("mouseover", function (event) {
    var button = event.target.closest && event.target.closest("button[id]");
    if (!button || button.title) return;
    for (var suffix in TITLES) {
      if (button.id.endsWith(suffix)) {
        button.title = TITLES[suffix];
        return;
      }
    }
  });

  window.webuiPngParameters = pngParameters;
  window.webuiChangeEmphasis = changeEmphasis;
})();
