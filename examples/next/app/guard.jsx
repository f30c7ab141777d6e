"use client";
// What happens when a signer with a key is created in browser code: it throws. (The key here is
// a dummy: a real key in a client component would be readable by every visitor.)
import { useEffect, useState } from "react";
import { ImagoSigner } from "@imago/signing";

export default function BrowserGuard() {
  const [message, setMessage] = useState("");
  useEffect(() => {
    try {
      new ImagoSigner({ key: "00", salt: "00" });
      setMessage("signer created in the browser");
    } catch (e) {
      setMessage(`${e.name}: ${e.message}`);
    }
  }, []);
  return <p id="browser-guard" style={{ fontSize: 12, color: "#a00" }}>{message}</p>;
}
