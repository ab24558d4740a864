package raid

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseTWShow(t *testing.T) {
	grubbs := `
Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU
------------------------------------------------------------------------
c0    9750-4i      14        14       3       0       1       1      OK       

Enclosure     Slots  Drives  Fans  TSUnits  PSUnits  Alarms   
--------------------------------------------------------------
/c0/e0        12     2       3     1        2        1        
/c0/e1        24     12      5     1        2        1        
`
	bootcEnc := `
Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU
------------------------------------------------------------------------
c0    9750-4i      18        18       4       0       5       3      -        

Encl    Slots   Drives  Fans   TSUnits  PSUnits
--------------------------------------------------
/c0/e0  12       10       6      8        2
`
	// rover's line stops before the BBU column
	rover := "\nCtl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU\n" +
		"------------------------------------------------------------------------\n" +
		"c0    9500S-8      8         6        1       0       1       1      "
	enclosureOnly := "Encl        Controllers\n-------------------------\ne0          /c0\nFan       Status          \n----------------------\nfan0      OK\n"
	twoCtl := `
Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU
------------------------------------------------------------------------
c0    9650SE-2LP   2         2        1       1       1       1      -
c1    9650SE-4LPML 4         4        1       0       1       1      Charging
c1; rm -rf /  x  x  x  x  x  x  x
`
	cases := []struct {
		name string
		text string
		want TWShow
	}{
		{"grubbs", grubbs, TWShow{
			Controllers: []TWController{{ID: "c0", Model: "9750-4i", NotOpt: "0", BBU: "OK"}},
			Enclosures:  []string{"/c0/e0", "/c0/e1"},
		}},
		{"bootc-enc", bootcEnc, TWShow{
			Controllers: []TWController{{ID: "c0", Model: "9750-4i", NotOpt: "0", BBU: "-"}},
			Enclosures:  []string{"/c0/e0"},
		}},
		{"rover", rover, TWShow{Controllers: []TWController{{ID: "c0", Model: "9500S-8", NotOpt: "0"}}}},
		{"enclosure only", enclosureOnly, TWShow{}},
		{"empty", "----------\n", TWShow{}},
		{"nothing", "", TWShow{}},
		{"two controllers, junk row", twoCtl, TWShow{Controllers: []TWController{
			{ID: "c0", Model: "9650SE-2LP", NotOpt: "1", BBU: "-"},
			{ID: "c1", Model: "9650SE-4LPML", NotOpt: "0", BBU: "Charging"},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseTWShow(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if (TWController{BBU: "-"}).HasBBU() || (TWController{}).HasBBU() || !(TWController{BBU: "OK"}).HasBBU() {
		t.Error("HasBBU")
	}
}

func TestParseTWInfo(t *testing.T) {
	// tw_cli /c0 show all: key = value lines, then the three tables
	showAll := `# tw_cli /c0 show all
/c0 Driver Version = 3.26.00.028-2.6.32RH
/c0 Model = 9750-4i
/c0 Verify Rate = 1

Unit  UnitType  Status         %RCmpl  %V/I/M  Stripe  Size(GB)  Cache  AVrfy
------------------------------------------------------------------------------
u0    RAID-5    VERIFYING      -       16%     256K    5587.9    RiW    ON

VPort Status         Unit Size      Type  Phy Encl-Slot    Model
------------------------------------------------------------------------------
p0    OK             u0   1.82 TB   SAS   0   -            SEAGATE ST32000444SS
p1    NOT-PRESENT    -    -         -     -   -            -

Name  OnlineState  BBUReady  Status    Volt     Temp     Hours  LastCapTest
---------------------------------------------------------------------------
bbu   On           Yes       OK        OK       OK       118    09-Jul-2012
`
	old := `
Unit  UnitType  Status         %Cmpl  Stripe  Size(GB)  Cache  AVerify  IgnECC
------------------------------------------------------------------------------
u0    RAID-5    REBUILDING     45%    64K     465.641   OFF    OFF      OFF
u1    RAID-1    OK             -      -       232.82    W      -        OFF
`
	bootc := `
Unit  UnitType  Status         %RCmpl  %V/I/M  Stripe  Size(GB)  Cache  AVrfy
------------------------------------------------------------------------------
u0    RAID-6    VERIFYING      -       29%(A)  256K    16763.7   RiW    ON     
u3    SPARE     VERIFYING      -       0%      -       2794.51   -      ON     
`
	cases := []struct {
		name string
		text string
		want TWInfo
	}{
		{"show all", showAll, TWInfo{
			Units:     []TWUnit{{ID: "u0", Type: "RAID-5", Status: "VERIFYING", Rebuild: -1, Progress: 16}},
			HasUnits:  true,
			Drives:    []TWDrive{{Port: "p0", Status: "OK", Unit: "u0"}, {Port: "p1", Status: "NOT-PRESENT", Unit: "-"}},
			HasDrives: true,
			BBU:       &TWBBU{Online: "On", Ready: "Yes", Status: "OK", Volt: "OK", Temp: "OK", Hours: "118", LastCapTest: "09-Jul-2012"},
		}},
		{"old %Cmpl", old, TWInfo{HasUnits: true, Units: []TWUnit{
			{ID: "u0", Type: "RAID-5", Status: "REBUILDING", Rebuild: 45, Progress: -1},
			{ID: "u1", Type: "RAID-1", Status: "OK", Rebuild: -1, Progress: -1},
		}}},
		{"automatic verify", bootc, TWInfo{HasUnits: true, Units: []TWUnit{
			{ID: "u0", Type: "RAID-6", Status: "VERIFYING", Rebuild: -1, Progress: 29},
			{ID: "u3", Type: "SPARE", Status: "VERIFYING", Rebuild: -1, Progress: 0},
		}}},
		{"empty unit table", "Unit  UnitType  Status\n-----------------------\n\n", TWInfo{HasUnits: true}},
		{"error text", "Error: (CLI:003) Specified controller does not exist.\n", TWInfo{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseTWInfo(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseTWEnclosure(t *testing.T) {
	// two enclosures run together, as in the corpus' c0.eX.show.all: the
	// second one's "Vendor =" line directly follows the first one's alarm
	text := `/c0/e0 Vendor = LSI CORP

Encl        Status      
-----------------------------
/c0/e0      ALARM-ACTIVATED 

                                    ---Speed--- 
Fan         Status          State   Step   RPM     Identify
------------------------------------------------------------
fan0        NOT-INSTALLED   -       -      N/A     N/A     

Alarm     Status          State     Audibility
------------------------------------------------
alm0      ACTIVATED       ON        UNMUTE       
/c0/e1 Vendor = LSI CORP
/c0/e1 Product ID = SAS2X36         

Encl        Status      
-----------------------------
/c0/e1      OK 

TempSensor    Status         Temperature     Identify 
--------------------------------------------------------
temp0         OK             24C(75F)        N/A             
`
	want := []TWEnclosureItem{
		{"Encl", "/c0/e0", "ALARM-ACTIVATED"},
		{"Fan", "fan0", "NOT-INSTALLED"},
		{"Alarm", "alm0", "ACTIVATED"},
		{"Encl", "/c0/e1", "OK"},
		{"TempSensor", "temp0", "OK"},
	}
	if got := ParseTWEnclosure(text); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// The corpus' concatenated capture of two enclosures reads as two.
func TestCorpusEnclosuresConcatenated(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(corpusDir(t), "tw_cli", "grubbs", "c0.eX.show.all"))
	if err != nil {
		t.Fatal(err)
	}
	var encl []string
	for _, it := range ParseTWEnclosure(string(b)) {
		if it.Kind == "Encl" {
			encl = append(encl, it.Name+":"+it.Status)
		}
		if it.Status == "Vendor" {
			t.Errorf("key = value line read as a row: %+v", it)
		}
	}
	if want := []string{"/c0/e0:ALARM-ACTIVATED", "/c0/e1:ALARM-ACTIVATED"}; !reflect.DeepEqual(encl, want) {
		t.Errorf("got %q, want %q", encl, want)
	}
}

func TestPercent(t *testing.T) {
	for in, want := range map[string]int{"98%": 98, "29%(A)": 29, "0%": 0, "45": 45, "-": -1, "": -1, "101%": -1, "x%": -1, "-5%": -1} {
		if got := percent(in); got != want {
			t.Errorf("percent(%q) = %d, want %d", in, got, want)
		}
	}
}
