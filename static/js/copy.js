// Copy buttons on the "linked" page. Without JavaScript the buttons stay hidden and the text
// can be selected by hand; nothing else on the page needs a script.
document.querySelectorAll("button.copy").forEach(function (button) {
  var target = document.getElementById(button.dataset.copyTarget);
  var status = document.querySelector(".copy-status");
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = target.value !== undefined ? target.value : target.textContent;
    navigator.clipboard.writeText(text.trim()).then(
      function () { if (status) status.textContent = "Copied."; },
      function () { if (status) status.textContent = "Could not copy: select the text and copy it by hand."; }
    );
  });
});
