(function () {
  function applyFilters() {
    var want = {};
    document.querySelectorAll('select[data-filter]').forEach(function (s) { want[s.dataset.filter] = s.value; });
    function ok(el) {
      return Object.keys(want).every(function (k) { return !want[k] || el.dataset[k] === want[k]; });
    }
    document.querySelectorAll('.filterable').forEach(function (el) {
      var match = ok(el);
      if (el.classList.contains('g')) { el.classList.toggle('dimmed', !match); }
      else { el.classList.toggle('hidden', !match); }
    });
  }
  document.querySelectorAll('select[data-filter]').forEach(function (s) { s.addEventListener('change', applyFilters); });
  document.querySelectorAll('.zoom button').forEach(function (b) {
    b.addEventListener('click', function () {
      var tl = document.getElementById(b.dataset.target);
      var k = parseFloat(b.dataset.zoom);
      tl.style.width = (100 * k) + '%';
      tl.classList.toggle('zoomed', k >= 10);
    });
  });
  function openTo(id) {
    var el = document.getElementById(id);
    for (var p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') { p.open = true; } }
  }
  document.querySelectorAll('a[href^="#"]').forEach(function (a) {
    a.addEventListener('click', function () { var id = a.getAttribute('href').slice(1); if (document.getElementById(id)) { openTo(id); } });
  });
  if (location.hash.length > 1 && document.getElementById(location.hash.slice(1))) { openTo(location.hash.slice(1)); }
})();
