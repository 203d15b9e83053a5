document.title += " (app 9a8b7c6d)";
