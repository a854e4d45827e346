#pragma once
// The browser client, served at "/": one page, no dependencies.

namespace chat {

inline constexpr const char* page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>libactor chat</title>
<style>
  body { font-family: sans-serif; max-width: 48em; margin: 2em auto; }
  #log { list-style: none; padding: 0; border: 1px solid #ccc; min-height: 12em; }
  #log li { padding: 0.2em 0.5em; }
  #log li.notice { color: #666; font-style: italic; }
  #log li.error { color: #a00; }
  input { padding: 0.3em; }
</style>
</head>
<body>
<h1>libactor chat</h1>
<p>
  <input id="name" placeholder="your name">
  <button id="connect">Connect</button>
  <span id="status">not connected</span>
</p>
<p>
  <input id="room" value="general">
  <button id="join">Join</button>
  <button id="leave">Leave</button>
  <button id="rooms">Rooms</button>
</p>
<p>
  <input id="text" size="50" placeholder="message">
  <button id="send">Send</button>
</p>
<ul id="log"></ul>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
let current = "";

function show(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  $("log").appendChild(li);
}

ws.onopen = () => { $("status").textContent = "open, not connected"; };
ws.onclose = () => { $("status").textContent = "disconnected"; };
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  switch (m.type) {
    case "welcome": $("status").textContent = "connected as " + m.name; break;
    case "message": show("[" + m.room + "] " + m.user + ": " + m.text); break;
    case "joined": show("[" + m.room + "] * " + m.user + " joined", "notice"); break;
    case "left": show("[" + m.room + "] * " + m.user + " left (" + m.text + ")", "notice"); break;
    case "rooms": show("rooms: " + (m.list || "none"), "notice"); break;
    case "error": show("error: " + m.text, "error"); break;
  }
};

$("connect").onclick = () => ws.send(JSON.stringify({type: "hello", name: $("name").value}));
$("join").onclick = () => { current = $("room").value; ws.send(JSON.stringify({type: "join", room: current})); };
$("leave").onclick = () => ws.send(JSON.stringify({type: "leave", room: $("room").value}));
$("rooms").onclick = () => ws.send(JSON.stringify({type: "rooms"}));
function send() {
  const text = $("text").value;
  if (!text) return;
  ws.send(JSON.stringify({type: "post", room: current || $("room").value, text: text}));
  $("text").value = "";
}
$("send").onclick = send;
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter") send(); });
</script>
</body>
</html>
)html";

}  // namespace chat
