// Drag and drop (or pick) several documents: each is sent as its own request with upload
// progress; the documents list then shows (and polls) its ingestion.
(function () {
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("files");
  var list = document.getElementById("uploads");
  if (!zone || !input || !list) return;

  function upload(file) {
    var item = document.createElement("li");
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    item.textContent = file.name + " — " + list.dataset.uploading + " ";
    item.appendChild(bar);
    item.className = "upload";
    item.dataset.title = file.name;
    list.appendChild(item);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", list.dataset.uploadUrl + "?title=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("X-CSRF-Token", list.dataset.csrf);
    xhr.setRequestHeader("HX-Request", "true");  // errors come back as a short fragment
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total);
    };
    xhr.onload = function () {
      if (xhr.status < 300) {
        item.remove();
        var documents = document.getElementById("documents");
        documents.outerHTML = xhr.responseText;
        htmx.process(document.getElementById("documents"));
      } else {
        var reason = xhr.responseText.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
        item.textContent = file.name + " — " + xhr.status + ": " + reason;
        item.className = "upload error";
      }
    };
    xhr.onerror = function () { item.className = "upload error"; };
    xhr.send(file);
  }

  function uploadAll(files) { for (var i = 0; i < files.length; i++) upload(files[i]); }
  input.addEventListener("change", function () { uploadAll(input.files); input.value = ""; });
  zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (e) {
    e.preventDefault(); zone.classList.remove("over"); uploadAll(e.dataTransfer.files);
  });
})();
