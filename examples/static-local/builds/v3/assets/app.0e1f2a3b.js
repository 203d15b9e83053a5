document.title += " (app 0e1f2a3b)";
