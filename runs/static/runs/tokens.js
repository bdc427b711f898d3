// The API tokens page: copy a new token (shown only this once) to the clipboard.
const field = document.getElementById("new-token");
const button = document.getElementById("copy-token");
const said = document.getElementById("copy-said");

if (field && button) {
  button.hidden = false;
  field.addEventListener("focus", () => field.select());
  button.addEventListener("click", async () => {
    field.focus();
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      said.textContent = "Copied to the clipboard.";
    } catch {
      // no clipboard outside a secure context (http:// other than localhost): the text is selected
      said.textContent = "Could not reach the clipboard: the token is selected, press Ctrl+C (⌘C) to copy it.";
    }
  });
}
